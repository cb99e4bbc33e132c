# Module manifest of Clustron.DKV.ClientShell: dkv's ClientShell cmdlets
# (a thin PowerShell layer over dkv.exe; see ../README.md).
@{
    RootModule           = 'Clustron.DKV.ClientShell.psm1'
    ModuleVersion        = '0.1.0'
    GUID                 = '33d63e76-2ce6-4d03-ae66-57157b8752da'
    Author               = 'dkv developers'
    CompanyName          = 'dkv'
    Copyright            = '(c) dkv developers'
    Description          = 'dkv ClientShell: read, write and watch the keys, counters and leases of a dkv store; latency and throughput tests. Runs dkv.exe.'
    PowerShellVersion    = '5.1'
    CompatiblePSEditions = @('Desktop', 'Core')
    FunctionsToExport    = @(
        'Connect-DkvStore',
        'Disconnect-DkvStore',
        'Get-DkvConnection',
        'Test-DkvConnection',
        'Get-DkvItem',
        'Get-DkvItems',
        'Set-DkvItem',
        'Set-DkvItems',
        'Remove-DkvItem',
        'Remove-DkvItems',
        'Refresh-DkvItem',
        'Set-DkvItemExpiration',
        'Get-DkvItemMetadata',
        'Test-DkvItem',
        'Get-DkvCounter',
        'Set-DkvCounter',
        'Increment-DkvCounter',
        'Decrement-DkvCounter',
        'Grant-DkvLease',
        'Refresh-DkvLease',
        'Revoke-DkvLease',
        'Test-DkvLease',
        'Watch-DkvKey',
        'Watch-DkvPrefix',
        'Test-DkvLatency',
        'Test-DkvThroughput',
        'Benchmark-DkvStore',
        'Stress-DkvStore'
    )
    CmdletsToExport      = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            Tags = @('dkv', 'key-value', 'distributed')
        }
    }
}
