/*
 * main.c -- dkv-manager main
 * (stub: being written)
 */
#include <stdio.h>
int main(void) { fputs("dkv-manager: not built yet\n", stderr); return 1; }
