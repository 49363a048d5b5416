<#
.SYNOPSIS
Removes the idk-agent Windows service and its program files.

.DESCRIPTION
Stops and deletes the service idk-agent, removes its firewall rule and
C:\Program Files\IDK\. C:\ProgramData\IDK\ (configuration, certificates,
spool, log) is kept unless -RemoveData is given: the spool may still hold
scans and events the collector has not acknowledged.

This file is plain ASCII on purpose, like install-agent.ps1.

.PARAMETER RemoveData
Also delete C:\ProgramData\IDK\, including the private key and the spool.

.EXAMPLE
.\uninstall-agent.ps1
#>
#Requires -RunAsAdministrator
[CmdletBinding()]
param(
    [switch]$RemoveData
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$ServiceName = 'idk-agent'
$ProgramDir = Join-Path $env:ProgramFiles 'IDK'
$DataDir = Join-Path $env:ProgramData 'IDK'
$FirewallRule = 'IDK agent metrics'

$svc = Get-Service -Name $ServiceName -ErrorAction SilentlyContinue
if ($null -ne $svc) {
    if ($svc.Status -ne 'Stopped') {
        Write-Host "stopping $ServiceName"
        Stop-Service -Name $ServiceName -Force
        $svc.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(60))
    }
    & sc.exe delete $ServiceName | Out-Host
    if ($LASTEXITCODE -ne 0) { throw "sc.exe delete $ServiceName failed with exit code $LASTEXITCODE" }
    # Deletion completes once no program (such as the Services console)
    # holds the service open; until then the executable may stay locked.
    for ($i = 0; $i -lt 30 -and $null -ne (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue); $i++) {
        Start-Sleep -Seconds 1
    }
    Write-Host "removed service $ServiceName"
} else {
    Write-Host "no service $ServiceName"
}

Get-NetFirewallRule -DisplayName $FirewallRule -ErrorAction SilentlyContinue | Remove-NetFirewallRule

if (Test-Path -LiteralPath $ProgramDir) {
    Remove-Item -LiteralPath $ProgramDir -Recurse -Force
    Write-Host "removed $ProgramDir"
}

if ($RemoveData) {
    if (Test-Path -LiteralPath $DataDir) {
        Remove-Item -LiteralPath $DataDir -Recurse -Force
        Write-Host "removed $DataDir"
    }
} else {
    Write-Host "kept $DataDir (configuration, certificates, spool, log); -RemoveData deletes it"
}
