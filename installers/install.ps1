# Install credguard for the current user in its own environment, check the machine with
# `credguard doctor`, and register the protection daemon as a per-user logon task
# (`credguard service install`).
#
#   installers\install.ps1                 install (or upgrade in place), register and start
#   installers\install.ps1 -NoStart        install; register the task without starting it
#   installers\install.ps1 -Venv           use a venv even when pipx is available
#   installers\install.ps1 -Uninstall      remove the task, the environment; the vault and the
#                                          configuration are kept
#   installers\install.ps1 -Uninstall -PurgeVault -PurgeVault
#                                          ...and destroy the vault first: it must be asked
#                                          twice (given once, you are asked to type 'destroy')
#
# The environment is pipx's when pipx is present, else a venv in %LOCALAPPDATA%\credguard\venv.
# An existing venv is always upgraded in place. Python 3.11 or newer: $env:PYTHON, else the
# `py -3` launcher, else `python`.
#
# Options are read from $args (no param block) so that -PurgeVault can be given twice.

#Requires -Version 5.1
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$StateExit = 7  # credguard's exit code when no service manager can be reached
$Src = Split-Path -Parent $PSScriptRoot
$Data = Join-Path $env:LOCALAPPDATA 'credguard'
$VenvDir = Join-Path $Data 'venv'
$VenvCg = Join-Path $VenvDir 'Scripts\credguard.exe'
$Vault = Join-Path $Data 'vault'

function Fail([string]$Message, [int]$Code = 1) {
    [Console]::Error.WriteLine("install.ps1: $Message")
    exit $Code
}

function Say([string]$Message) {
    [Console]::Error.WriteLine($Message)
}

$NoStart = $false
$UseVenv = $false
$Uninstall = $false
$Purge = 0
foreach ($arg in $args) {
    switch ("$arg") {
        '-NoStart' { $NoStart = $true }
        '-Venv' { $UseVenv = $true }
        '-Uninstall' { $Uninstall = $true }
        '-PurgeVault' { $Purge += 1 }
        { $_ -in @('-Help', '-h', '/?') } {
            Get-Content -LiteralPath $PSCommandPath -TotalCount 18 | ForEach-Object { $_.TrimStart('#') }
            exit 0
        }
        default { Fail "unknown option: $arg" 2 }
    }
}
if ($Purge -gt 0 -and -not $Uninstall) { Fail '-PurgeVault only goes with -Uninstall' 2 }

function Test-Pipx {
    return [bool](Get-Command pipx -ErrorAction SilentlyContinue)
}

function Test-PipxHasCredguard {
    if (-not (Test-Pipx)) { return $false }
    $listed = & pipx list --short
    return [bool]($listed | Where-Object { "$_" -match '^credguard ' })
}

function Get-PipxBinDir {
    $dir = & pipx environment --value PIPX_BIN_DIR
    if ($LASTEXITCODE -ne 0 -or -not $dir) { return (Join-Path $HOME '.local\bin') }
    return "$dir".Trim()
}

# The installed credguard.exe, or $null. (Functions that return a value send the output of
# the programs they run to Out-Host, so it never ends up in that value.)
function Find-Credguard {
    if (Test-Path -LiteralPath $VenvCg) { return $VenvCg }
    if (Test-PipxHasCredguard) {
        $candidate = Join-Path (Get-PipxBinDir) 'credguard.exe'
        if (Test-Path -LiteralPath $candidate) { return $candidate }
    }
    return $null
}

# The Python command as an array: the program, then its leading arguments.
function Find-Python {
    if ($env:PYTHON) { return @($env:PYTHON) }
    if (Get-Command py -ErrorAction SilentlyContinue) { return @('py', '-3') }
    if (Get-Command python -ErrorAction SilentlyContinue) { return @('python') }
    Fail 'Python 3.11 or newer is needed (python.org, or: winget install Python.Python.3.12)'
}

function Install-Venv {
    $py = @(Find-Python)
    $exe = $py[0]
    $pre = @($py | Select-Object -Skip 1)
    & $exe @pre -c 'import sys; sys.exit(sys.version_info < (3, 11))' | Out-Host
    if ($LASTEXITCODE -ne 0) { Fail "credguard needs Python 3.11 or newer ($exe is older)" }
    New-Item -ItemType Directory -Force -Path $Data | Out-Null
    if (-not (Test-Path -LiteralPath (Join-Path $VenvDir 'Scripts\python.exe'))) {
        & $exe @pre -m venv $VenvDir | Out-Host
        if ($LASTEXITCODE -ne 0) { Fail "could not create the virtual environment $VenvDir" }
    }
    $pip = @('-m', 'pip', 'install', '-q', '--disable-pip-version-check', '--upgrade', $Src)
    & (Join-Path $VenvDir 'Scripts\python.exe') @pip | Out-Host
    if ($LASTEXITCODE -ne 0) { Fail 'pip install failed (see above)' }
    return $VenvCg
}

function Install-Pipx {
    & pipx install --force $Src | Out-Host
    if ($LASTEXITCODE -ne 0) { Fail 'pipx install failed (see above)' }
    return (Join-Path (Get-PipxBinDir) 'credguard.exe')
}

# True when the user asked twice: -PurgeVault twice, or once plus 'destroy' typed.
function Confirm-Purge {
    if ($Purge -ge 2) { return $true }
    if ($Purge -eq 1 -and -not [Console]::IsInputRedirected) {
        Say "Destroy the vault in ${Vault}? Every credential in it becomes unreadable for good."
        $answer = Read-Host "Type 'destroy' to continue"
        if ($answer -eq 'destroy') { return $true }
    }
    if ($Purge -ge 1) { Say 'install.ps1: the vault is kept (-PurgeVault must be given twice to destroy it).' }
    return $false
}

function Remove-Vault([string]$Cg) {
    if (-not (Test-Path -LiteralPath $Vault)) { Say "install.ps1: no vault at $Vault"; return $false }
    if (-not $Cg) {
        Fail ('credguard is not installed, so the vault cannot be destroyed (its key is in the ' +
              'Credential Manager): install it again, then run this again. Nothing was removed.')
    }
    & $Cg vault destroy --yes | Out-Host
    if ($LASTEXITCODE -ne 0) { Fail 'destroying the vault failed; nothing was removed' }
    return $true
}

function Uninstall-Credguard {
    $cg = Find-Credguard
    $kept = 'the vault and the configuration are kept'
    if (Confirm-Purge) {
        if (Remove-Vault $cg) { $kept = 'the vault is destroyed; the configuration is kept' }
    }
    if ($cg) {
        & $cg service uninstall
        if ($LASTEXITCODE -ne 0) { Say 'install.ps1: warning: the service was not removed' }
    }
    if (Test-PipxHasCredguard) { & pipx uninstall credguard }
    if (Test-Path -LiteralPath $VenvDir) { Remove-Item -LiteralPath $VenvDir -Recurse -Force }
    Say "credguard: service and environment removed; $kept."
}

function Install-Service([string]$Cg) {
    if ($NoStart) { & $Cg service install --no-start } else { & $Cg service install }
    $rc = $LASTEXITCODE
    if ($rc -eq $StateExit) {
        Say "install.ps1: no service for this system; run '$Cg daemon' yourself."
    } elseif ($rc -ne 0) {
        exit $rc
    }
}

if ($Uninstall) {
    Uninstall-Credguard
    exit 0
}

if (-not $UseVenv -and -not (Test-Path -LiteralPath $VenvDir) -and (Test-Pipx)) {
    $cg = Install-Pipx
} else {
    $cg = Install-Venv
}
$version = & $cg --version
Say "$version installed: $cg"
$binDir = Split-Path -Parent $cg
if (($env:PATH -split ';') -notcontains $binDir) { Say "  (add $binDir to your PATH)" }

Say '== credguard doctor'
& $cg doctor
if ($LASTEXITCODE -ne 0) { Say 'install.ps1: doctor found problems (above); the install goes on.' }

Say '== credguard service install'
Install-Service $cg
exit 0
