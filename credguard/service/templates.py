"""The service definition templates, embedded so an installed credguard always has them.

Each constant is a byte-identical copy of the file of the same name in the repository's
top-level ``service/`` directory (``tests/test_service.py`` fails when they differ). Placeholders
are ``{name}``; :func:`credguard.service.base.fill` replaces them.
"""

from __future__ import annotations

# service/credguard.service
SYSTEMD_UNIT = r"""# credguard per-user protection daemon: a systemd *user* unit.
# Rendered by `credguard service install` (credguard {version}); ExecStart is the absolute path
# of the credguard that rendered it. Installed as ~/.config/systemd/user/credguard.service.
#
# Hardening: only settings that work in a user manager without user namespaces and that cannot
# stop the daemon from doing its job (deleting credential files anywhere in the watched roots,
# reaching the keyring over the session D-Bus, running the configured import targets):
#   kept:  NoNewPrivileges, LockPersonality, RestrictRealtime, RestrictSUIDSGID,
#          SystemCallArchitectures=native (seccomp filters, allowed unprivileged under
#          NoNewPrivileges), UMask=0077 (every file the daemon creates is private).
#   left out, on purpose:
#   - PrivateTmp, ProtectSystem, ProtectHome, ReadWritePaths, PrivateDevices, ProtectKernel*:
#     in a user unit they need unprivileged user namespaces, which many systems disable (the
#     unit would then fail to start); they would hide or freeze parts of the file system the
#     daemon must watch and clean (scan.extra_roots may lie outside $HOME or in /tmp); and
#     PrivateTmp would hide the control socket from the CLI whenever it falls back to
#     /tmp/credguard-UID (not under systemd --user, which always sets $XDG_RUNTIME_DIR, so the
#     socket lives in $XDG_RUNTIME_DIR/credguard; the first two reasons are enough).
#   - MemoryDenyWriteExecute, SystemCallFilter, RestrictAddressFamilies, RestrictNamespaces:
#     they also bind the import targets the daemon runs (az, pwsh, custom uploaders): .NET and
#     libffi need writable+executable memory, uploaders need the network.
#
# Exit status 3 (bad configuration) and 7 (state directory unsafe, or another credguard daemon
# already holds the lock) are not retried: restarting cannot fix them. Other failures are
# retried, at most 5 times in 10 minutes.

[Unit]
Description=credguard: protects Azure credential files in your home directory
Documentation=https://github.com/credguard/credguard
StartLimitIntervalSec=600
StartLimitBurst=5

[Service]
Type=notify
NotifyAccess=main
ExecStart={exec_start}
ExecReload={exec_reload}
Restart=on-failure
RestartSec=5
RestartPreventExitStatus=3 7
TimeoutStartSec=60
TimeoutStopSec=10
UMask=0077
NoNewPrivileges=yes
LockPersonality=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
SystemCallArchitectures=native

[Install]
WantedBy=default.target
"""

# service/com.credguard.daemon.plist
LAUNCHD_PLIST = r"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!--
  credguard per-user protection daemon: a launchd agent, rendered by `credguard service install`
  (credguard {version}) into ~/Library/LaunchAgents/com.credguard.daemon.plist and loaded with
  `launchctl bootstrap gui/UID`. KeepAlive restarts it only after a failed exit; launchd cannot
  exempt "bad configuration" (exit 3) from that, so ThrottleInterval keeps such a loop slow.
-->
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>com.credguard.daemon</string>
	<key>ProgramArguments</key>
	<array>
{program_arguments}
	</array>
	<key>RunAtLoad</key>
	<true/>
	<key>KeepAlive</key>
	<dict>
		<key>SuccessfulExit</key>
		<false/>
	</dict>
	<key>ProcessType</key>
	<string>Background</string>
	<key>ThrottleInterval</key>
	<integer>30</integer>
	<key>ExitTimeOut</key>
	<integer>10</integer>
	<key>Umask</key>
	<integer>63</integer>
	<key>StandardOutPath</key>
	<string>{log_file}</string>
	<key>StandardErrorPath</key>
	<string>{log_file}</string>
</dict>
</plist>
"""

# service/credguard-task.xml
TASK_XML = r"""<?xml version="1.0" encoding="UTF-16"?>
<!--
  credguard per-user protection daemon: a Windows scheduled task (Task Scheduler schema 1.2),
  rendered by `credguard service install` (credguard {version}) and registered as the task
  "credguard" with `schtasks /Create /TN credguard /XML FILE /F`. It starts at the user's logon,
  in the user's session (so it can reach the Credential Manager), through credguard's windowless
  launcher (credguardw.exe: no console window that would end the daemon when closed).
  The logon trigger fires again every minute for as long as the user is logged on, and
  IgnoreNew leaves a running daemon alone: so a daemon that crashed is restarted within a minute.
  (RestartOnFailure alone would not do that: it retries only an action that failed to start;
  it stays, for that case: 3 tries, a minute apart.) A daemon that exits at once (a bad
  configuration, exit 3) is therefore started again once a minute, never faster.
  `credguard stop` disables the task so that it stays stopped; `credguard start` enables it.
  It never runs twice and has no time limit.
-->
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Author>credguard</Author>
    <Description>Protects Azure credential files in your profile (credguard daemon).</Description>
    <URI>\credguard</URI>
  </RegistrationInfo>
  <Triggers>
    <LogonTrigger>
      <Repetition>
        <Interval>PT1M</Interval>
      </Repetition>
      <Enabled>true</Enabled>
      <UserId>{user_id}</UserId>
    </LogonTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <UserId>{user_id}</UserId>
      <LogonType>InteractiveToken</LogonType>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <AllowHardTerminate>true</AllowHardTerminate>
    <StartWhenAvailable>true</StartWhenAvailable>
    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>
    <IdleSettings>
      <StopOnIdleEnd>false</StopOnIdleEnd>
      <RestartOnIdle>false</RestartOnIdle>
    </IdleSettings>
    <AllowStartOnDemand>true</AllowStartOnDemand>
    <Enabled>true</Enabled>
    <Hidden>true</Hidden>
    <RunOnlyIfIdle>false</RunOnlyIfIdle>
    <WakeToRun>false</WakeToRun>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <Priority>7</Priority>
    <RestartOnFailure>
      <Interval>PT1M</Interval>
      <Count>3</Count>
    </RestartOnFailure>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{command}</Command>
      <Arguments>{arguments}</Arguments>
    </Exec>
  </Actions>
</Task>
"""

TEMPLATES: dict[str, str] = {
    "credguard.service": SYSTEMD_UNIT,
    "com.credguard.daemon.plist": LAUNCHD_PLIST,
    "credguard-task.xml": TASK_XML,
}
