# Clustron.DKV.ClientShell.psm1 -- the ClientShell cmdlets of dkv for
# PowerShell (docs/clientshell.md).  Each function runs the dkv program
# (dkv.exe) with the same command and parameters plus -Json, and writes
# the objects of its answer to the pipeline.  The connection is the one
# dkv keeps per user (Connect-DkvStore), shared with dkv run from any
# other shell.  A failure is a non-terminating error carrying dkv's
# message; $LASTEXITCODE keeps dkv's exit status (docs/clientshell.md,
# "Exit codes").

Set-StrictMode -Version 2.0

# ----------------------------------------------------------------------
# Private helpers (the same block in both modules: each module is copied
# on its own).  They find dkv.exe, turn bound parameters into its
# arguments, run it and turn its -Json output into objects.
# BEGIN DKV HELPERS

$script:DkvInvariant = [System.Globalization.CultureInfo]::InvariantCulture
$script:DkvCommonParameters =
    @([System.Management.Automation.PSCmdlet]::CommonParameters) +
    @([System.Management.Automation.PSCmdlet]::OptionalCommonParameters)

# The dkv program: $env:DKV_CLI, else dkv.exe beside the module (or one
# directory up, the installer's layout), else the first dkv on PATH.
function Get-DkvExecutable {
    if ($env:DKV_CLI -and (Test-Path -LiteralPath $env:DKV_CLI)) {
        return $env:DKV_CLI
    }
    foreach ($dir in @($PSScriptRoot, (Split-Path -Parent $PSScriptRoot))) {
        foreach ($name in @('dkv.exe', 'dkv')) {
            $candidate = Join-Path $dir $name
            if (Test-Path -LiteralPath $candidate -PathType Leaf) {
                return $candidate
            }
        }
    }
    $cmd = Get-Command -Name 'dkv' -CommandType Application `
        -ErrorAction SilentlyContinue | Select-Object -First 1
    if ($cmd) {
        return $cmd.Source
    }
    throw 'dkv.exe not found: install dkv, put dkv.exe beside the module ' +
        'or on PATH, or set $env:DKV_CLI to its path.'
}

# One element of a list or hashtable as dkv reads it: quoted when it holds
# a separator, a blank or a quote.
function ConvertTo-DkvItemText {
    param([object] $Value)
    $text = ConvertTo-DkvScalarText $Value
    if ($text -notmatch "[,;=\s'""]") {
        return $text
    }
    if ($text -notmatch "'") {
        return "'" + $text + "'"
    }
    if ($text -notmatch '"') {
        return '"' + $text + '"'
    }
    throw "dkv cannot take a list element with both kinds of quotes: $text"
}

# A single value as text: numbers in the invariant culture, TimeSpans as
# seconds, booleans as true/false.
function ConvertTo-DkvScalarText {
    param([object] $Value)
    if ($null -eq $Value) {
        return ''
    }
    if ($Value -is [TimeSpan]) {
        return $Value.TotalSeconds.ToString('R', $script:DkvInvariant)
    }
    if ($Value -is [bool]) {
        if ($Value) { return 'true' } else { return 'false' }
    }
    if ($Value -is [IFormattable]) {
        return $Value.ToString($null, $script:DkvInvariant)
    }
    return [string]$Value
}

# The text of one parameter value: lists joined by commas, hashtables as
# @{k='v';...}, TimeSpans as seconds.
function ConvertTo-DkvValueText {
    param([object] $Value)
    if ($Value -is [System.Collections.IDictionary]) {
        $pairs = foreach ($key in $Value.Keys) {
            (ConvertTo-DkvItemText $key) + '=' +
                (ConvertTo-DkvItemText $Value[$key])
        }
        return '@{' + ($pairs -join ';') + '}'
    }
    if ($Value -is [System.Collections.IEnumerable] -and
        $Value -isnot [string]) {
        $items = foreach ($item in $Value) { ConvertTo-DkvItemText $item }
        return ($items -join ',')
    }
    return ConvertTo-DkvScalarText $Value
}

# dkv's arguments for COMMAND and the bound parameters BOUND: -Name:value
# (so that a value starting with '-' stays a value), switches as -Name.
function ConvertTo-DkvArgumentList {
    param(
        [string] $Command,
        [System.Collections.IDictionary] $Bound,
        [string[]] $Exclude = @()
    )
    $argv = New-Object System.Collections.Generic.List[string]
    $argv.Add($Command)
    foreach ($name in $Bound.Keys) {
        if ($script:DkvCommonParameters -contains $name -or
            $Exclude -contains $name) {
            continue
        }
        $value = $Bound[$name]
        if ($value -is [System.Management.Automation.SwitchParameter]) {
            if ($value.IsPresent) {
                $argv.Add("-$name")
            }
            continue
        }
        $argv.Add("-${name}:" + (ConvertTo-DkvValueText $value))
    }
    return , $argv.ToArray()
}

# Runs dkv with ARGV (adding -Json) and writes the objects of its JSON
# output to the pipeline.  A non-zero exit: Write-Error with dkv's
# standard error; $LASTEXITCODE keeps dkv's exit status.
function Invoke-DkvJson {
    param([string[]] $ArgumentList)
    $exe = Get-DkvExecutable
    # dkv's exit status is handled here, not by PowerShell 7.3+.
    $ErrorActionPreference = 'Continue'
    $PSNativeCommandUseErrorActionPreference = $false
    $oldEncoding = $null
    try {
        $oldEncoding = [Console]::OutputEncoding
        [Console]::OutputEncoding = [System.Text.Encoding]::UTF8
    } catch {
        $oldEncoding = $null
    }
    try {
        $all = & $exe @ArgumentList '-Json' 2>&1
        $status = $LASTEXITCODE
    } finally {
        if ($null -ne $oldEncoding) {
            [Console]::OutputEncoding = $oldEncoding
        }
    }
    $stdout = New-Object System.Collections.Generic.List[string]
    $stderr = New-Object System.Collections.Generic.List[string]
    foreach ($line in $all) {
        if ($line -is [System.Management.Automation.ErrorRecord]) {
            $stderr.Add($line.ToString())
        } else {
            $stdout.Add([string]$line)
        }
    }
    $text = ($stdout -join "`n").Trim()
    if ($text) {
        try {
            $parsed = $text | ConvertFrom-Json
        } catch {
            $parsed = $null
            $stderr.Add("unexpected output of dkv: $text")
            if ($status -eq 0) { $status = 1 }
        }
        foreach ($object in @($parsed)) {
            $object
        }
    }
    $global:LASTEXITCODE = $status
    if ($status -ne 0) {
        $message = ($stderr -join [Environment]::NewLine).Trim()
        if (-not $message) {
            $message = "dkv $($ArgumentList[0]) failed (exit code $status)"
        }
        Write-Error -Message $message -Category InvalidResult `
            -ErrorId "Dkv.Exit$status"
    } elseif ($stderr.Count -gt 0) {
        foreach ($line in $stderr) { Write-Warning $line }
    }
}

# Runs dkv with ARGV plus -Json for a watch: each line (one JSON object)
# becomes an object as soon as it arrives, until the watch ends.
function Invoke-DkvJsonStream {
    param([string[]] $ArgumentList)
    $exe = Get-DkvExecutable
    # dkv's exit status is handled here, not by PowerShell 7.3+.
    $ErrorActionPreference = 'Continue'
    $PSNativeCommandUseErrorActionPreference = $false
    & $exe @ArgumentList '-Json' | ForEach-Object {
        if ($_) { $_ | ConvertFrom-Json }
    }
    $status = $LASTEXITCODE
    $global:LASTEXITCODE = $status
    if ($status -ne 0) {
        Write-Error -Message ("dkv $($ArgumentList[0]) failed (exit code " +
            "$status; its message is above)") -Category InvalidResult `
            -ErrorId "Dkv.Exit$status"
    }
}

# One argument of a Windows command line (the C runtime's quoting rules).
function ConvertTo-DkvCommandLineArgument {
    param([string] $Argument)
    if ($Argument -and $Argument -notmatch '[\s"]') {
        return $Argument
    }
    $quoted = $Argument -replace '(\\*)"', '$1$1\"'
    $quoted = $quoted -replace '(\\+)$', '$1$1'
    return '"' + $quoted + '"'
}

# Runs dkv with ARGV on this console (no capture: it draws its own live
# table), waits for it, and keeps its exit status in $LASTEXITCODE.
function Invoke-DkvConsole {
    param([string[]] $ArgumentList)
    $exe = Get-DkvExecutable
    $line = ($ArgumentList | ForEach-Object {
        ConvertTo-DkvCommandLineArgument $_ }) -join ' '
    $process = Start-Process -FilePath $exe -ArgumentList $line `
        -NoNewWindow -Wait -PassThru
    $status = $process.ExitCode
    $global:LASTEXITCODE = $status
    if ($status -ne 0) {
        Write-Error -Message ("dkv $($ArgumentList[0]) failed (exit code " +
            "$status; its message is above)") -Category InvalidResult `
            -ErrorId "Dkv.Exit$status"
    }
}

# END DKV HELPERS

# A value for Set-DkvItem: text as it is, other objects as compact JSON.
function ConvertTo-DkvItemValue {
    param([object] $Value)
    if ($null -eq $Value) {
        return ''
    }
    if ($Value -is [string] -or $Value -is [ValueType]) {
        return ConvertTo-DkvScalarText $Value
    }
    return ConvertTo-Json -InputObject $Value -Compress -Depth 16
}

# A lease id: the number itself, or the LeaseId of Grant-DkvLease's
# result.
function ConvertTo-DkvLeaseId {
    param([object] $LeaseId)
    if ($null -ne $LeaseId -and $LeaseId.PSObject.Properties['LeaseId']) {
        return [string]$LeaseId.LeaseId
    }
    return ConvertTo-DkvScalarText $LeaseId
}

# ------------------------------------------------------------ connection

function Connect-DkvStore {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true, Position = 0)]
        [string] $StoreName,
        [Parameter(Mandatory = $true, Position = 1)]
        [Alias('Servers')]
        [string[]] $Endpoints,
        [ValidateRange(1, 120)]
        [int] $TimeoutSec,
        [string] $Token,
        [string] $TokenFile,
        [switch] $Force
    )
    Invoke-DkvJson (ConvertTo-DkvArgumentList 'Connect-DkvStore' `
        $PSBoundParameters)
}

function Disconnect-DkvStore {
    [CmdletBinding()]
    param()
    Invoke-DkvJson (ConvertTo-DkvArgumentList 'Disconnect-DkvStore' `
        $PSBoundParameters)
}

function Get-DkvConnection {
    [CmdletBinding()]
    param()
    Invoke-DkvJson (ConvertTo-DkvArgumentList 'Get-DkvConnection' `
        $PSBoundParameters)
}

function Test-DkvConnection {
    [CmdletBinding()]
    param(
        [string] $StoreName,
        [Alias('Servers')]
        [string[]] $Endpoints,
        [ValidateRange(1, 120)]
        [int] $TimeoutSec
    )
    Invoke-DkvJson (ConvertTo-DkvArgumentList 'Test-DkvConnection' `
        $PSBoundParameters)
}

# ------------------------------------------------------------------ items

function Get-DkvItem {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true, Position = 0, ValueFromPipeline = $true,
            ValueFromPipelineByPropertyName = $true)]
        [string] $Key
    )
    process {
        Invoke-DkvJson (ConvertTo-DkvArgumentList 'Get-DkvItem' `
            $PSBoundParameters)
    }
}

function Get-DkvItems {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true, Position = 0, ValueFromPipeline = $true,
            ValueFromPipelineByPropertyName = $true)]
        [string[]] $Keys
    )
    begin {
        $all = New-Object System.Collections.Generic.List[string]
    }
    process {
        foreach ($k in $Keys) { $all.Add($k) }
    }
    end {
        if ($all.Count -gt 0) {
            Invoke-DkvJson (ConvertTo-DkvArgumentList 'Get-DkvItems' `
                @{ Keys = $all.ToArray() })
        }
    }
}

function Set-DkvItem {
    [CmdletBinding(SupportsShouldProcess = $true,
        DefaultParameterSetName = 'Expire')]
    param(
        [Parameter(Mandatory = $true, Position = 0)]
        [string] $Key,
        [Parameter(Mandatory = $true, Position = 1)]
        [AllowEmptyString()]
        [object] $Value,
        [Parameter(ParameterSetName = 'Expire')]
        [ValidateRange(1, 2147483647)]
        [int] $ExpireAfterSec,
        [Parameter(ParameterSetName = 'Lease')]
        [object] $LeaseId
    )
    $bound = @{}
    foreach ($name in $PSBoundParameters.Keys) {
        $bound[$name] = $PSBoundParameters[$name]
    }
    $bound['Value'] = ConvertTo-DkvItemValue $Value
    if ($bound.ContainsKey('LeaseId')) {
        $bound['LeaseId'] = ConvertTo-DkvLeaseId $LeaseId
    }
    if ($PSCmdlet.ShouldProcess($Key, 'Set-DkvItem')) {
        Invoke-DkvJson (ConvertTo-DkvArgumentList 'Set-DkvItem' $bound)
    }
}

function Set-DkvItems {
    [CmdletBinding(SupportsShouldProcess = $true)]
    param(
        [Parameter(Mandatory = $true, Position = 0, ValueFromPipeline = $true)]
        [System.Collections.IDictionary] $Items
    )
    begin {
        $all = [ordered]@{}
    }
    process {
        foreach ($k in $Items.Keys) {
            if ([string]::IsNullOrEmpty([string]$k)) {
                throw 'Set-DkvItems: a key is null or empty.'
            }
            $all[[string]$k] = ConvertTo-DkvItemValue $Items[$k]
        }
    }
    end {
        if ($all.Count -gt 0 -and $PSCmdlet.ShouldProcess(
                ($all.Keys -join ', '), 'Set-DkvItems')) {
            Invoke-DkvJson (ConvertTo-DkvArgumentList 'Set-DkvItems' `
                @{ Items = $all })
        }
    }
}

function Remove-DkvItem {
    [CmdletBinding(SupportsShouldProcess = $true)]
    param(
        [Parameter(Mandatory = $true, Position = 0, ValueFromPipeline = $true,
            ValueFromPipelineByPropertyName = $true)]
        [string] $Key
    )
    process {
        if ($PSCmdlet.ShouldProcess($Key, 'Remove-DkvItem')) {
            Invoke-DkvJson (ConvertTo-DkvArgumentList 'Remove-DkvItem' `
                $PSBoundParameters)
        }
    }
}

function Remove-DkvItems {
    [CmdletBinding(SupportsShouldProcess = $true)]
    param(
        [Parameter(Mandatory = $true, Position = 0, ValueFromPipeline = $true,
            ValueFromPipelineByPropertyName = $true)]
        [string[]] $Keys
    )
    begin {
        $all = New-Object System.Collections.Generic.List[string]
    }
    process {
        foreach ($k in $Keys) { $all.Add($k) }
    }
    end {
        if ($all.Count -gt 0 -and $PSCmdlet.ShouldProcess(
                ($all -join ', '), 'Remove-DkvItems')) {
            Invoke-DkvJson (ConvertTo-DkvArgumentList 'Remove-DkvItems' `
                @{ Keys = $all.ToArray() })
        }
    }
}

function Refresh-DkvItem {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true, Position = 0, ValueFromPipeline = $true,
            ValueFromPipelineByPropertyName = $true)]
        [string] $Key
    )
    process {
        Invoke-DkvJson (ConvertTo-DkvArgumentList 'Refresh-DkvItem' `
            $PSBoundParameters)
    }
}

function Set-DkvItemExpiration {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true, Position = 0)]
        [string] $Key,
        [Parameter(Mandatory = $true, Position = 1)]
        [TimeSpan] $TimeToLive
    )
    Invoke-DkvJson (ConvertTo-DkvArgumentList 'Set-DkvItemExpiration' `
        $PSBoundParameters)
}

function Get-DkvItemMetadata {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true, Position = 0, ValueFromPipeline = $true,
            ValueFromPipelineByPropertyName = $true)]
        [string] $Key
    )
    process {
        Invoke-DkvJson (ConvertTo-DkvArgumentList 'Get-DkvItemMetadata' `
            $PSBoundParameters)
    }
}

function Test-DkvItem {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true, Position = 0, ValueFromPipeline = $true,
            ValueFromPipelineByPropertyName = $true)]
        [string] $Key,
        [switch] $Detailed
    )
    process {
        Invoke-DkvJson (ConvertTo-DkvArgumentList 'Test-DkvItem' `
            $PSBoundParameters)
    }
}

# --------------------------------------------------------------- counters

function Get-DkvCounter {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true, Position = 0, ValueFromPipeline = $true,
            ValueFromPipelineByPropertyName = $true)]
        [string] $Key
    )
    process {
        Invoke-DkvJson (ConvertTo-DkvArgumentList 'Get-DkvCounter' `
            $PSBoundParameters)
    }
}

function Set-DkvCounter {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true, Position = 0)]
        [string] $Key,
        [Parameter(Mandatory = $true, Position = 1)]
        [long] $Value
    )
    Invoke-DkvJson (ConvertTo-DkvArgumentList 'Set-DkvCounter' `
        $PSBoundParameters)
}

function Increment-DkvCounter {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true, Position = 0)]
        [string] $Key,
        [Parameter(Position = 1)]
        [ValidateRange(1L, [long]::MaxValue)]
        [long] $Delta
    )
    Invoke-DkvJson (ConvertTo-DkvArgumentList 'Increment-DkvCounter' `
        $PSBoundParameters)
}

function Decrement-DkvCounter {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true, Position = 0)]
        [string] $Key,
        [Parameter(Position = 1)]
        [ValidateRange(1L, [long]::MaxValue)]
        [long] $Delta
    )
    Invoke-DkvJson (ConvertTo-DkvArgumentList 'Decrement-DkvCounter' `
        $PSBoundParameters)
}

# ----------------------------------------------------------------- leases

function Grant-DkvLease {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true, Position = 0)]
        [TimeSpan] $TimeToLive
    )
    Invoke-DkvJson (ConvertTo-DkvArgumentList 'Grant-DkvLease' `
        $PSBoundParameters)
}

function Refresh-DkvLease {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true, Position = 0, ValueFromPipeline = $true,
            ValueFromPipelineByPropertyName = $true)]
        [object] $LeaseId
    )
    process {
        Invoke-DkvJson (ConvertTo-DkvArgumentList 'Refresh-DkvLease' `
            @{ LeaseId = (ConvertTo-DkvLeaseId $LeaseId) })
    }
}

function Revoke-DkvLease {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true, Position = 0, ValueFromPipeline = $true,
            ValueFromPipelineByPropertyName = $true)]
        [object] $LeaseId
    )
    process {
        Invoke-DkvJson (ConvertTo-DkvArgumentList 'Revoke-DkvLease' `
            @{ LeaseId = (ConvertTo-DkvLeaseId $LeaseId) })
    }
}

# The per-test objects (Test, Success, Error), then the summary (Total,
# Passed, Failed, Success), as the reference shows them.
function Test-DkvLease {
    [CmdletBinding()]
    param()
    $result = Invoke-DkvJson (ConvertTo-DkvArgumentList 'Test-DkvLease' `
        $PSBoundParameters)
    foreach ($summary in @($result)) {
        if ($summary.PSObject.Properties['Tests']) {
            foreach ($test in @($summary.Tests)) { $test }
            $summary | Select-Object -Property * -ExcludeProperty Tests
        } else {
            $summary
        }
    }
}

# --------------------------------------------------------------- watching

function Watch-DkvKey {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true, Position = 0)]
        [string] $Key,
        [switch] $IncludeSnapshot,
        [ValidateRange(1L, [long]::MaxValue)]
        [long] $MaxEvents,
        [ValidateRange(1L, [long]::MaxValue)]
        [long] $DurationSec
    )
    Invoke-DkvJsonStream (ConvertTo-DkvArgumentList 'Watch-DkvKey' `
        $PSBoundParameters)
}

function Watch-DkvPrefix {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true, Position = 0)]
        [AllowEmptyString()]
        [string] $Prefix,
        [switch] $IncludeSnapshot,
        [ValidateRange(1L, [long]::MaxValue)]
        [long] $MaxEvents,
        [ValidateRange(1L, [long]::MaxValue)]
        [long] $DurationSec
    )
    Invoke-DkvJsonStream (ConvertTo-DkvArgumentList 'Watch-DkvPrefix' `
        $PSBoundParameters)
}

# ------------------------------------------------------------ performance

function Test-DkvLatency {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true)]
        [string] $StoreName,
        [Parameter(Mandatory = $true)]
        [ValidateRange(1, 1000000)]
        [int] $Iterations,
        [ValidateRange(32, 1048576)]
        [int] $ObjectSizeBytes
    )
    Invoke-DkvJson (ConvertTo-DkvArgumentList 'Test-DkvLatency' `
        $PSBoundParameters)
}

function Test-DkvThroughput {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true)]
        [string] $StoreName,
        [Parameter(Mandatory = $true)]
        [ValidateRange(1, 3600)]
        [int] $DurationSec,
        [Parameter(Mandatory = $true)]
        [ValidateRange(1, 1024)]
        [int] $Concurrency,
        [ValidateRange(32, 1048576)]
        [int] $ObjectSizeBytes
    )
    Invoke-DkvJson (ConvertTo-DkvArgumentList 'Test-DkvThroughput' `
        $PSBoundParameters)
}

function Benchmark-DkvStore {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true)]
        [string] $StoreName,
        [Parameter(Mandatory = $true)]
        [ValidateSet('ReadHeavy', 'WriteHeavy', 'Mixed')]
        [string] $Profile,
        [ValidateRange(1, 3600)]
        [int] $DurationSec,
        [ValidateRange(1, 1024)]
        [int] $Concurrency,
        [ValidateRange(32, 1048576)]
        [int] $ObjectSizeBytes
    )
    Invoke-DkvJson (ConvertTo-DkvArgumentList 'Benchmark-DkvStore' `
        $PSBoundParameters)
}

function Stress-DkvStore {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true)]
        [string] $StoreName,
        [Parameter(Mandatory = $true)]
        [ValidateRange(1, 86400)]
        [int] $DurationSec,
        [Parameter(Mandatory = $true)]
        [ValidateRange(1, 2048)]
        [int] $Concurrency,
        [ValidateRange(32, 1048576)]
        [int] $ObjectSizeBytes
    )
    Invoke-DkvJson (ConvertTo-DkvArgumentList 'Stress-DkvStore' `
        $PSBoundParameters)
}

Export-ModuleMember -Function @(
    'Connect-DkvStore', 'Disconnect-DkvStore', 'Get-DkvConnection',
    'Test-DkvConnection',
    'Get-DkvItem', 'Get-DkvItems', 'Set-DkvItem', 'Set-DkvItems',
    'Remove-DkvItem', 'Remove-DkvItems', 'Refresh-DkvItem',
    'Set-DkvItemExpiration', 'Get-DkvItemMetadata', 'Test-DkvItem',
    'Get-DkvCounter', 'Set-DkvCounter', 'Increment-DkvCounter',
    'Decrement-DkvCounter',
    'Grant-DkvLease', 'Refresh-DkvLease', 'Revoke-DkvLease', 'Test-DkvLease',
    'Watch-DkvKey', 'Watch-DkvPrefix',
    'Test-DkvLatency', 'Test-DkvThroughput', 'Benchmark-DkvStore',
    'Stress-DkvStore')
