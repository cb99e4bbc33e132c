/*
 * cmd_metrics.c -- Watch-DkvStoreMetrics
 * (stub: being written)
 */
#include "cli/admin.h"
