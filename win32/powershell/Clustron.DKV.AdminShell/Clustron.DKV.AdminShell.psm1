# Clustron.DKV.AdminShell.psm1 -- the AdminShell cmdlets of dkv for
# PowerShell (docs/admin-api.md, the reference's AdminShell pages).  Each
# function runs the dkv program (dkv.exe) with the same command and
# parameters plus -Json, and writes the objects of its answer (one row
# per manager or per instance: Manager, Action, Result, Message, or the
# store summaries of Get-DkvStore) to the pipeline.  The managers are the
# ones dkv keeps per user (Connect-DkvManager), shared with dkv run from
# any other shell; requests are signed with the user's admin key
# (Get-DkvAdminKey prints the line to add to a manager's authorized-keys
# file).  A failure is a non-terminating error carrying dkv's message;
# $LASTEXITCODE keeps dkv's exit status.

Set-StrictMode -Version 2.0

# The reference's instance definition for Add-DkvInstance -Nodes:
# [InstanceDefinition]@{ InstanceName = 'orders-2'; ClustronPort = 7812;
# ClientPort = 7862 }.  Plain hashtables work too.
if (-not ('InstanceDefinition' -as [type])) {
    Add-Type -TypeDefinition @'
public class InstanceDefinition
{
    public string InstanceName { get; set; }
    public int ClustronPort { get; set; }
    public int ClientPort { get; set; }
}
'@
}

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

# One -Nodes entry as dkv reads it: name:clustronPort:clientPort, from an
# InstanceDefinition, a hashtable, an object with those properties, or
# that text itself.
function ConvertTo-DkvNodeText {
    param([object] $Node)
    if ($Node -is [string]) {
        return $Node
    }
    $fields = @{}
    foreach ($name in @('InstanceName', 'ClustronPort', 'ClientPort')) {
        if ($Node -is [System.Collections.IDictionary]) {
            if (-not ($Node.Keys -contains $name)) {
                throw "Add-DkvInstance -Nodes: an entry has no $name."
            }
            $fields[$name] = $Node[$name]
        } elseif ($Node.PSObject.Properties[$name]) {
            $fields[$name] = $Node.$name
        } else {
            throw "Add-DkvInstance -Nodes: an entry has no $name."
        }
    }
    return ('{0}:{1}:{2}' -f $fields['InstanceName'],
        (ConvertTo-DkvScalarText $fields['ClustronPort']),
        (ConvertTo-DkvScalarText $fields['ClientPort']))
}

# ------------------------------------------------------------- connection

function Connect-DkvManager {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true, Position = 0)]
        [Alias('Servers')]
        [string[]] $Managers,
        [ValidateRange(1, 65535)]
        [int] $Port,
        [switch] $Force,
        [ValidateRange(1, 3600)]
        [int] $TimeoutSec,
        [switch] $Parallel
    )
    Invoke-DkvJson (ConvertTo-DkvArgumentList 'Connect-DkvManager' `
        $PSBoundParameters)
}

function Get-DkvAdminKey {
    [CmdletBinding()]
    param()
    Invoke-DkvJson (ConvertTo-DkvArgumentList 'Get-DkvAdminKey' `
        $PSBoundParameters)
}

# ----------------------------------------------------------------- stores

function New-DkvStore {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true, Position = 0)]
        [Alias('StoreName')]
        [string] $Name,
        [Parameter(Mandatory = $true)]
        [string] $InstancePrefix,
        [ValidateRange(1, 1000)]
        [int] $InstanceCount,
        [ValidateRange(1, 65535)]
        [int] $ClustronPort,
        [ValidateRange(1, 65535)]
        [int] $ClientPort,
        [string[]] $Managers,
        [ValidateRange(1, 65535)]
        [int] $Port,
        [ValidateRange(1, 3600)]
        [int] $TimeoutSec,
        [switch] $Parallel,
        [switch] $FailFast
    )
    Invoke-DkvJson (ConvertTo-DkvArgumentList 'New-DkvStore' `
        $PSBoundParameters)
}

function Get-DkvStore {
    [CmdletBinding()]
    param(
        [Parameter(Position = 0)]
        [Alias('StoreName')]
        [string] $Name,
        [string[]] $Managers,
        [ValidateRange(1, 65535)]
        [int] $Port,
        [ValidateRange(1, 3600)]
        [int] $TimeoutSec,
        [switch] $Parallel,
        [switch] $FailFast
    )
    Invoke-DkvJson (ConvertTo-DkvArgumentList 'Get-DkvStore' `
        $PSBoundParameters)
}

function Start-DkvStore {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true, Position = 0)]
        [Alias('StoreName')]
        [string] $Name,
        [string] $InstanceName,
        [string[]] $Managers,
        [ValidateRange(1, 65535)]
        [int] $Port,
        [ValidateRange(1, 3600)]
        [int] $TimeoutSec,
        [switch] $Parallel,
        [switch] $FailFast
    )
    Invoke-DkvJson (ConvertTo-DkvArgumentList 'Start-DkvStore' `
        $PSBoundParameters)
}

function Stop-DkvStore {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true, Position = 0)]
        [Alias('StoreName')]
        [string] $Name,
        [string] $InstanceName,
        [switch] $Force,
        [string[]] $Managers,
        [ValidateRange(1, 65535)]
        [int] $Port,
        [ValidateRange(1, 3600)]
        [int] $TimeoutSec,
        [switch] $Parallel,
        [switch] $FailFast
    )
    Invoke-DkvJson (ConvertTo-DkvArgumentList 'Stop-DkvStore' `
        $PSBoundParameters)
}

# -------------------------------------------------------------- instances

function Add-DkvInstance {
    [CmdletBinding(DefaultParameterSetName = 'Single')]
    param(
        [Parameter(Mandatory = $true, Position = 0)]
        [Alias('Name')]
        [string] $StoreName,
        [Parameter(Mandatory = $true, ParameterSetName = 'Single')]
        [string] $InstanceName,
        [Parameter(Mandatory = $true, ParameterSetName = 'Single')]
        [ValidateRange(1, 65535)]
        [int] $ClustronPort,
        [Parameter(Mandatory = $true, ParameterSetName = 'Single')]
        [ValidateRange(1, 65535)]
        [int] $ClientPort,
        [Parameter(Mandatory = $true, ParameterSetName = 'Multi')]
        [object[]] $Nodes,
        [string] $Manager,
        [string[]] $Managers,
        [ValidateRange(1, 65535)]
        [int] $Port,
        [ValidateRange(1, 3600)]
        [int] $TimeoutSec,
        [switch] $Parallel,
        [switch] $FailFast
    )
    $bound = @{}
    foreach ($name in $PSBoundParameters.Keys) {
        $bound[$name] = $PSBoundParameters[$name]
    }
    if ($bound.ContainsKey('Nodes')) {
        $bound['Nodes'] = [string[]]@($Nodes | ForEach-Object {
            ConvertTo-DkvNodeText $_ })
    }
    Invoke-DkvJson (ConvertTo-DkvArgumentList 'Add-DkvInstance' $bound)
}

# ------------------------------------------------------------- monitoring

# Draws dkv's live table on this console until Ctrl+C (or -Count
# refreshes): no objects.
function Watch-DkvStoreMetrics {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true, Position = 0)]
        [Alias('Name')]
        [string] $StoreName,
        [ValidateRange(1, 60)]
        [int] $RefreshSec,
        [ValidateRange(1L, [long]::MaxValue)]
        [long] $Count,
        [string[]] $Managers,
        [ValidateRange(1, 65535)]
        [int] $Port,
        [ValidateRange(1, 3600)]
        [int] $TimeoutSec
    )
    Invoke-DkvConsole (ConvertTo-DkvArgumentList 'Watch-DkvStoreMetrics' `
        $PSBoundParameters)
}

Export-ModuleMember -Function @(
    'Connect-DkvManager', 'Get-DkvAdminKey',
    'New-DkvStore', 'Get-DkvStore', 'Start-DkvStore', 'Stop-DkvStore',
    'Add-DkvInstance', 'Watch-DkvStoreMetrics')
