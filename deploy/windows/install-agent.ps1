<#
.SYNOPSIS
Installs or updates idk-agent as a Windows service on a scanner PC.

.DESCRIPTION
Copies idk-agent.exe to C:\Program Files\IDK\ and the configuration and
certificates to C:\ProgramData\IDK\, then registers the service idk-agent:
automatic (delayed) start, restarted by Windows if it fails.

Safe to run again, e.g. to install a new idk-agent.exe: an existing
agent.toml and existing certificates are kept unless new ones are given.
The service runs as LocalSystem; C:\ProgramData\IDK\, which holds the
agent's private key and spool, is made readable by SYSTEM and
Administrators only. The log is C:\ProgramData\IDK\idk-agent.log.

This file is plain ASCII on purpose: Windows PowerShell 5.1 reads a script
without a byte order mark in the ANSI code page, which would garble
Cyrillic text.

.PARAMETER Binary
idk-agent.exe to install. Default: idk-agent.exe next to this script.

.PARAMETER Config
agent.toml to install if C:\ProgramData\IDK\agent.toml does not exist yet.
Default: agent.toml next to this script, then ..\agent.toml.

.PARAMETER CertDir
Folder with ca.crt, agent-<NUM_IDK>.crt and agent-<NUM_IDK>.key as made by
'idk-collector pki agent'; copied to C:\ProgramData\IDK\certs\.

.PARAMETER MetricsFrom
Address of the regional Prometheus. When given, the firewall lets it (and
only it) reach the agent's metrics port; set [metrics] listen = ':9464' in
agent.toml too.

.EXAMPLE
.\install-agent.ps1 -CertDir E:\certs-850591
#>
#Requires -RunAsAdministrator
[CmdletBinding()]
param(
    [string]$Binary = (Join-Path $PSScriptRoot 'idk-agent.exe'),
    [string]$Config = '',
    [string]$CertDir = '',
    [string]$MetricsFrom = ''
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$ServiceName = 'idk-agent'
$ProgramDir = Join-Path $env:ProgramFiles 'IDK'
$DataDir = Join-Path $env:ProgramData 'IDK'
$Exe = Join-Path $ProgramDir 'idk-agent.exe'
$ConfigPath = Join-Path $DataDir 'agent.toml'
$FirewallRule = 'IDK agent metrics'

# sc.exe reports failure only through its exit code.
function Invoke-Sc {
    & sc.exe @args | Out-Host
    if ($LASTEXITCODE -ne 0) {
        throw "sc.exe $($args -join ' ') failed with exit code $LASTEXITCODE"
    }
}

if (-not (Test-Path -LiteralPath $Binary -PathType Leaf)) {
    throw "idk-agent.exe not found at $Binary; pass -Binary"
}
if ($Config -eq '') {
    $Config = Join-Path $PSScriptRoot 'agent.toml'
    if (-not (Test-Path -LiteralPath $Config)) {
        $Config = Join-Path (Split-Path -Parent $PSScriptRoot) 'agent.toml'
    }
}

New-Item -ItemType Directory -Force -Path $ProgramDir | Out-Null
New-Item -ItemType Directory -Force -Path (Join-Path $DataDir 'certs') | Out-Null

# The data folder holds the private key: SYSTEM and Administrators only,
# nothing inherited from C:\ProgramData (where Users may read). SIDs rather
# than names, which are translated on a Russian Windows.
& icacls.exe $DataDir /inheritance:r /grant:r '*S-1-5-18:(OI)(CI)F' '*S-1-5-32-544:(OI)(CI)F' | Out-Null
if ($LASTEXITCODE -ne 0) { throw "icacls $DataDir failed with exit code $LASTEXITCODE" }

# A running service locks its executable: stop it before replacing it.
$svc = Get-Service -Name $ServiceName -ErrorAction SilentlyContinue
if ($null -ne $svc -and $svc.Status -ne 'Stopped') {
    Write-Host "stopping $ServiceName"
    Stop-Service -Name $ServiceName -Force
    $svc.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(60))
}
Copy-Item -LiteralPath $Binary -Destination $Exe -Force
Write-Host "installed $Exe"

if (Test-Path -LiteralPath $ConfigPath) {
    Write-Host "keeping $ConfigPath"
} else {
    if (-not (Test-Path -LiteralPath $Config -PathType Leaf)) {
        throw "agent.toml not found at $Config; pass -Config"
    }
    Copy-Item -LiteralPath $Config -Destination $ConfigPath
    Write-Host "installed $ConfigPath from $Config"
}

if ($CertDir -ne '') {
    $certs = @(Get-ChildItem -LiteralPath $CertDir -File |
        Where-Object { $_.Name -eq 'ca.crt' -or $_.Name -like 'agent-*.crt' -or $_.Name -like 'agent-*.key' })
    if ($certs.Count -eq 0) { throw "no ca.crt or agent-*.crt/.key in $CertDir" }
    foreach ($c in $certs) {
        Copy-Item -LiteralPath $c.FullName -Destination (Join-Path $DataDir 'certs') -Force
        Write-Host "installed certs\$($c.Name)"
    }
}

# Refuse to register a service that would fail at once: the error shows
# here instead of in the log of a service restarting in a loop.
& $Exe -config $ConfigPath -check
if ($LASTEXITCODE -ne 0) {
    throw "$ConfigPath is not valid (see above); fix it and run this script again"
}

$binPath = "`"$Exe`" -config `"$ConfigPath`""
if ($null -eq $svc) {
    New-Service -Name $ServiceName -BinaryPathName $binPath -DisplayName 'IDK agent' `
        -Description 'Ships X-ray scans from this scanner PC to the regional IDK collector (QUIC, mutual TLS).' `
        -StartupType Automatic | Out-Null
    Write-Host "registered service $ServiceName"
} else {
    # Through WMI rather than 'sc.exe config binPath=': Windows PowerShell
    # 5.1 passes the quotes inside $binPath to sc.exe unescaped.
    $r = Get-CimInstance -ClassName Win32_Service -Filter "Name='$ServiceName'" |
        Invoke-CimMethod -MethodName Change -Arguments @{ PathName = $binPath }
    if ($r.ReturnValue -ne 0) { throw "could not update service $ServiceName (Win32_Service.Change returned $($r.ReturnValue))" }
}
# Delayed start: the network and the scanner's disks are up by then.
Invoke-Sc config $ServiceName start= delayed-auto
# Restart after 5 s, 5 s, then every 60 s; forget past failures after a
# day without one.
Invoke-Sc failure $ServiceName reset= 86400 actions= restart/5000/restart/5000/restart/60000
# Apply those actions also when the agent stops with an error of its own
# (service-specific exit code), not only when the process crashes.
Invoke-Sc failureflag $ServiceName 1

if ($MetricsFrom -ne '') {
    Get-NetFirewallRule -DisplayName $FirewallRule -ErrorAction SilentlyContinue | Remove-NetFirewallRule
    New-NetFirewallRule -DisplayName $FirewallRule -Direction Inbound -Protocol TCP -LocalPort 9464 `
        -RemoteAddress $MetricsFrom -Program $Exe -Action Allow | Out-Null
    Write-Host "firewall: TCP 9464 open to $MetricsFrom"
}

Start-Service -Name $ServiceName
Get-Service -Name $ServiceName | Format-Table -AutoSize Name, Status, StartType
Write-Host "log: $(Join-Path $DataDir 'idk-agent.log')"
