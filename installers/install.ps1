# Install credguard for the current user in its own environment, register the protection
# daemon as a per-user logon task, (re)start it (`credguard restart`), check that it runs and
# check the machine with `credguard doctor`. The same options as installers/install.sh.
#
# Run it with PowerShell's execution policy bypassed for this one run (the default policy
# refuses to run scripts):
#   powershell -ExecutionPolicy Bypass -File installers\install.ps1 [OPTIONS]
#
#   -Experimental    required to install: credguard has never run on Windows (README,
#                    "Platforms"); without it the script refuses and changes nothing
#   (no option)      install (or upgrade in place), register and start; put credguard on PATH
#   -NoStart         install; register the task without starting it
#   -Venv            use a venv even when pipx is available
#   -WithTray        also install the tray icon's packages
#   -Uninstall       stop the daemon, remove the task, the environment and the PATH entry this
#                    script added; the vault, configuration and state are kept (and their
#                    places printed). Refused while an Azure tool's cache is sealed, unless
#                    unsealed first:
#     -Unseal                     ...unseal sealed caches first without asking
#     -PurgeConfig / -PurgeState  ...and delete the configuration / state directory
#     -PurgeVault -PurgeVault     ...and destroy the vault first: it must be asked twice
#                                 (given once, you are asked to type 'destroy')
#
# The environment is pipx's when pipx is present, else a venv in %LOCALAPPDATA%\credguard\venv.
# An existing venv is always upgraded in place; pip builds from a temporary copy of this
# checkout. Python 3.11 or newer: $env:PYTHON, else the `py -3` launcher, else `python`.
# The environment's command folder is added to your *user* PATH when it is missing there (and
# removed by -Uninstall, if this script added it). Linux-only (install.sh): the background
# process when no service manager answers (Task Scheduler always does here).
#
# Options are read from $args (no param block) so that -PurgeVault can be given twice.

#Requires -Version 5.1
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

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

# credguard on Windows is checked only by the platform conformance suite, a simulation on
# Linux (tests/platform); it has never run on Windows, and its daemon deletes files by itself.
# So installing takes -Experimental, said knowingly; uninstalling never does. Refuse before
# anything is installed or changed.
if (-not (($args -contains '-Experimental') -or ($args -contains '-Uninstall'))) {
    Fail ("credguard has never run on Windows: its Windows port is checked only by a " +
          "simulation on Linux (see README.md, 'Platforms'), and its daemon deletes the " +
          "credential files it vaults by itself. To install it anyway, run again with " +
          "-Experimental. Nothing was installed.")
}

$NoStart = $false
$UseVenv = $false
$Uninstall = $false
$Purge = 0
$WithTray = $false
$Unseal = $false
$PurgeConfig = $false
$PurgeState = $false
$PathMarker = Join-Path $Data 'path-added.txt'  # the PATH entry this script added, if any
$ReadySeconds = 10  # how long the daemon has to answer `credguard status` after its start
foreach ($arg in $args) {
    switch ("$arg") {
        '-NoStart' { $NoStart = $true }
        '-Experimental' { }  # checked above, before anything ran
        '-Venv' { $UseVenv = $true }
        '-Uninstall' { $Uninstall = $true }
        '-PurgeVault' { $Purge += 1 }
        '-WithTray' { $WithTray = $true }
        '-Unseal' { $Unseal = $true }
        '-PurgeConfig' { $PurgeConfig = $true }
        '-PurgeState' { $PurgeState = $true }
        { $_ -in @('-Help', '-h', '/?') } {
            Get-Content -LiteralPath $PSCommandPath -TotalCount 22 | ForEach-Object { $_.TrimStart('#') }
            exit 0
        }
        default { Fail "unknown option: $arg" 2 }
    }
}
if (($Purge -gt 0 -or $Unseal -or $PurgeConfig -or $PurgeState) -and -not $Uninstall) {
    Fail '-Unseal, -PurgeVault, -PurgeConfig and -PurgeState only go with -Uninstall' 2
}

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
    $spec = if ($WithTray) { "$Copy[tray]" } else { $Copy }
    Say "installing credguard with pip into $VenvDir (this can take a minute)"
    $pip = @('-m', 'pip', 'install', '--disable-pip-version-check', '--progress-bar', 'off',
             '--upgrade', $spec)
    & (Join-Path $VenvDir 'Scripts\python.exe') @pip | Out-Host
    if ($LASTEXITCODE -ne 0) { Fail 'pip install failed (see above)' }
    return $VenvCg
}

function Install-Pipx {
    & pipx install --force $Copy | Out-Host
    if ($LASTEXITCODE -ne 0) { Fail 'pipx install failed (see above)' }
    if ($WithTray) { & pipx inject credguard 'pystray>=0.19' Pillow | Out-Host }
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

# Where the installed credguard keeps NAME (vault, config, state); the defaults without it.
function Get-Place([string]$Cg, [string]$Name) {
    if ($Cg) {
        foreach ($line in @(& $Cg service paths)) {
            $parts = "$line" -split "`t", 2
            if ($parts[0] -eq $Name) { return $parts[1] }
        }
    }
    switch ($Name) {
        'vault' { return $Vault }
        'config' { return (Join-Path $env:APPDATA 'credguard') }
        'log' { return (Join-Path $Data 'daemon.log') }
        default { return $Data }
    }
}

# Unseal sealed Azure tool caches (asked, or -Unseal), else refuse: their tokens would be left
# in a vault nothing installed can open.
function Invoke-UnsealFirst([string]$Cg) {
    $sealed = @((& $Cg status --json | Out-String | ConvertFrom-Json).sealed)
    if ($sealed.Count -eq 0) { return }
    $tools = @($sealed | ForEach-Object { $_.tool })
    $unseal = $Unseal
    if (-not $unseal -and -not [Console]::IsInputRedirected) {
        Say "These Azure tool caches are sealed in the vault: $($tools -join ' ')"
        $answer = Read-Host 'Unseal them now (the tokens become plaintext files again)? [y/N]'
        $unseal = $answer -match '^(y|yes)$'
    }
    if (-not $unseal) {
        Fail ("refusing to uninstall: sealed caches ($($tools -join ' ')) would be left in a " +
              'vault nothing can open. Run again with -Unseal, or run credguard unseal TOOL ' +
              'yourself. Nothing was removed.')
    }
    foreach ($tool in $tools) {
        & $Cg unseal $tool | Out-Host
        if ($LASTEXITCODE -ne 0) { Fail "unsealing $tool failed; nothing was removed" }
    }
}

# The user's PATH as stored in the registry, its %VARIABLES% unexpanded:
# [Environment]::GetEnvironmentVariable would expand them, and writing that back would freeze
# every %USERPROFILE%-style entry.
function Get-UserPath {
    $key = [Microsoft.Win32.Registry]::CurrentUser.OpenSubKey('Environment')
    if (-not $key) { return '' }
    try { return [string]$key.GetValue('Path', '', 'DoNotExpandEnvironmentNames') }
    finally { $key.Close() }
}

# Store VALUE as the user's PATH (kept REG_EXPAND_SZ), then let new terminals see it:
# [Environment]::SetEnvironmentVariable at user scope broadcasts the change (WM_SETTINGCHANGE);
# clearing a variable that is never set makes it do only that.
function Set-UserPath([string]$Value) {
    $key = [Microsoft.Win32.Registry]::CurrentUser.CreateSubKey('Environment')
    try { $key.SetValue('Path', $Value, [Microsoft.Win32.RegistryValueKind]::ExpandString) }
    finally { $key.Close() }
    [Environment]::SetEnvironmentVariable('CREDGUARD_INSTALL_UNUSED', $null, 'User')
}

# The user's PATH entries, without empty ones.
function Get-UserPathEntries {
    return @((Get-UserPath) -split ';' | Where-Object { $_ })
}

# Whether DIR is on the user's PATH (case-insensitive, a trailing '\' ignored, like Windows).
function Test-UserPath([string]$Dir) {
    $want = $Dir.TrimEnd('\')
    foreach ($entry in (Get-UserPathEntries)) {
        if ([Environment]::ExpandEnvironmentVariables($entry).TrimEnd('\') -eq $want) { return $true }
    }
    return $false
}

# Put DIR on the user's PATH only if it is missing there, and say so; remember that this script
# added it ($PathMarker), so that -Uninstall removes it and nothing else (pipx's bin folder may
# serve other tools). This session's PATH gets it too.
function Add-UserPath([string]$Dir) {
    if (Test-UserPath $Dir) {
        Say "  $Dir is on your PATH already"
    } else {
        Set-UserPath ((@(Get-UserPathEntries) + $Dir) -join ';')
        New-Item -ItemType Directory -Force -Path $Data | Out-Null
        Set-Content -LiteralPath $PathMarker -Value $Dir -Encoding UTF8
        Say "  added $Dir to your user PATH: credguard works in terminals opened from now on"
    }
    if (($env:PATH -split ';') -notcontains $Dir) { $env:PATH = "$env:PATH;$Dir" }
}

# Take off the user's PATH the folder Add-UserPath put there, if it did.
function Remove-UserPath {
    if (-not (Test-Path -LiteralPath $PathMarker)) { return }
    $dir = (Get-Content -LiteralPath $PathMarker -TotalCount 1).Trim()
    $want = $dir.TrimEnd('\')
    $kept = @(Get-UserPathEntries | Where-Object { $_.TrimEnd('\') -ne $want })
    if ($kept.Count -ne @(Get-UserPathEntries).Count) {
        Set-UserPath ($kept -join ';')
        Say "  removed $dir from your user PATH"
    }
    Remove-Item -LiteralPath $PathMarker -Force
}

function Remove-Place([string]$What, [string]$Path) {
    if ((Split-Path -Leaf $Path) -ne 'credguard') { Say "install.ps1: not deleting $Path"; return }
    if (Test-Path -LiteralPath $Path) {
        Remove-Item -LiteralPath $Path -Recurse -Force
        Say "  deleted the ${What}: $Path"
    }
}

function Uninstall-Credguard {
    $cg = Find-Credguard
    if ($cg) { Invoke-UnsealFirst $cg }
    $places = @{}
    foreach ($name in 'vault', 'config', 'state') { $places[$name] = Get-Place $cg $name }
    $destroyed = $false
    if (Confirm-Purge) { $destroyed = Remove-Vault $cg }
    if ($cg) {
        & $cg stop | Out-Host
        & $cg service uninstall | Out-Host
        if ($LASTEXITCODE -ne 0) { Say 'install.ps1: the service was not removed (above)' }
    }
    if (Test-PipxHasCredguard) { & pipx uninstall credguard | Out-Host }
    if (Test-Path -LiteralPath $VenvDir) { Remove-Item -LiteralPath $VenvDir -Recurse -Force }
    Remove-UserPath
    Say 'credguard: the daemon, the task and the environment are removed.'
    if ($PurgeConfig) { Remove-Place 'configuration' $places['config'] }
    if ($PurgeState -and $places['state'] -ne $Data) { Remove-Place 'state' $places['state'] }
    elseif ($PurgeState) { Say "  the state shares $Data with the vault here: not deleted" }
    if ($destroyed) { Say "  destroyed the vault:    $($places['vault'])" }
    elseif (Test-Path -LiteralPath $places['vault']) { Say "  kept the vault:         $($places['vault'])  (-PurgeVault twice)" }
    if (Test-Path -LiteralPath $places['config']) { Say "  kept the configuration: $($places['config'])  (-PurgeConfig)" }
    if (Test-Path -LiteralPath $places['state']) { Say "  kept the state:         $($places['state'])  (-PurgeState)" }
}

function Start-Daemon([string]$Cg) {
    if ($NoStart) {
        & $Cg service install --no-start | Out-Host
        return
    }
    & $Cg service install --no-start | Out-Null
    if ($LASTEXITCODE -ne 0) { Say 'install.ps1: the logon task was not registered' }
    & $Cg restart | Out-Host
    if ($LASTEXITCODE -ne 0) { Fail 'the daemon did not start (above)' }
    # schtasks /Run only says the task was asked to run: the daemon may still exit at once
    if (-not (Wait-Daemon $Cg)) {
        $log = Get-Place $Cg 'log'
        Say "install.ps1: the end of the daemon's log, $log"
        Get-Content -LiteralPath $log -Tail 10 -ErrorAction SilentlyContinue | Out-Host
        Fail ("the daemon did not start: the task ran, but no daemon answered 'credguard " +
              "status' within $ReadySeconds s. Its log: $log (above); the task's last result: " +
              "Get-ScheduledTaskInfo -TaskName credguard. The installation itself is done.")
    }
    Say "  the daemon answers 'credguard status'"
}

# True once the daemon answers `credguard status` (exit 0), polled for up to $ReadySeconds.
function Wait-Daemon([string]$Cg) {
    # in this function only: PowerShell 5.1 turns a redirected native stderr line into an error
    $ErrorActionPreference = 'Continue'
    $clock = [Diagnostics.Stopwatch]::StartNew()
    do {
        & $Cg status 2>&1 | Out-Null
        if ($LASTEXITCODE -eq 0) { return $true }
        Start-Sleep -Milliseconds 500
    } while ($clock.Elapsed.TotalSeconds -lt $ReadySeconds)
    return $false
}

if ($Uninstall) {
    Uninstall-Credguard
    exit 0
}

# pip builds in the source tree (build\, *.egg-info): build from a copy, not the checkout
$Tmp = Join-Path ([IO.Path]::GetTempPath()) ("credguard-install-" + [guid]::NewGuid())
$Copy = Join-Path $Tmp 'src'
New-Item -ItemType Directory -Force -Path $Copy | Out-Null
foreach ($name in 'pyproject.toml', 'README.md', 'credguard') {
    Copy-Item -LiteralPath (Join-Path $Src $name) -Destination $Copy -Recurse
}
try {
    if (-not $UseVenv -and -not (Test-Path -LiteralPath $VenvDir) -and (Test-Pipx)) {
        $cg = Install-Pipx
    } else {
        $cg = Install-Venv
    }
} finally {
    Remove-Item -LiteralPath $Tmp -Recurse -Force -ErrorAction SilentlyContinue
}
$version = & $cg --version
Say "$version installed: $cg"
Add-UserPath (Split-Path -Parent $cg)

Say '== the daemon'
Start-Daemon $cg

Say '== credguard doctor'
& $cg doctor
if ($LASTEXITCODE -ne 0) { Say "install.ps1: doctor's findings are above; the install itself is done." }
exit 0
