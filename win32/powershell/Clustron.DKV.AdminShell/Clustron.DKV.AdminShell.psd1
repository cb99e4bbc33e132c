# Module manifest of Clustron.DKV.AdminShell: dkv's AdminShell cmdlets
# (a thin PowerShell layer over dkv.exe; see ../README.md).
@{
    RootModule           = 'Clustron.DKV.AdminShell.psm1'
    ModuleVersion        = '0.1.0'
    GUID                 = '4a1f9231-9bea-4291-830a-385cfe136630'
    Author               = 'dkv developers'
    CompanyName          = 'dkv'
    Copyright            = '(c) dkv developers'
    Description          = 'dkv AdminShell: create, start, stop and extend dkv stores through the dkv-manager of each machine; watch their metrics. Runs dkv.exe.'
    PowerShellVersion    = '5.1'
    CompatiblePSEditions = @('Desktop', 'Core')
    FunctionsToExport    = @(
        'Connect-DkvManager',
        'New-DkvStore',
        'Get-DkvStore',
        'Add-DkvInstance',
        'Start-DkvStore',
        'Stop-DkvStore',
        'Watch-DkvStoreMetrics',
        'Get-DkvAdminKey'
    )
    CmdletsToExport      = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            Tags = @('dkv', 'key-value', 'distributed', 'admin')
        }
    }
}
