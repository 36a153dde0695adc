"""The scan walk on real trees with the failure classes real files showed (issue 13): sniffed
files that do not parse are reported as skipped, ADAL's cache is found by name anywhere,
UTF-16 downloads are found, other vendors' files are left alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import lookalikes, payloads
from helpers.home import Home, run_subprocess

from credguard import config
from credguard.detect import kinds
from credguard.paths import default_roots
from credguard.scan import ScanResult, scan

pytestmark = pytest.mark.timeout(60)


def run_scan() -> ScanResult:
    return scan(default_roots(), config.load())


def found(result: ScanResult) -> dict[str, str]:
    return {Path(f.path).relative_to(Path.home()).as_posix(): f.kind for f in result.findings}


def test_a_sniffed_file_with_markers_that_does_not_parse_is_skipped_not_dropped(
    home: Home,
) -> None:
    home.write("Downloads/cut.json", b'{"AccessToken": {"k": {"secret": "abc"')
    home.write("Downloads/broken.xml", b"<publishData><publishProfile userPWD='a'></publishData>")
    home.write("Downloads/plain.json", b'{"not": "a credential"')  # no marker: not reported
    result = run_scan()
    assert result.findings == []
    assert sorted((Path(s.path).name, s.reason) for s in result.skipped) == [
        ("broken.xml", "malformed"), ("cut.json", "malformed")]
    assert all("abc" not in s.detail for s in result.skipped)
    assert result.errors == []  # found by sniffing: reported, not an error of the scan


def test_adal_token_cache_is_found_by_name_anywhere_in_the_roots(home: Home) -> None:
    home.write("Downloads/TokenCache.dat", lookalikes.adal_token_cache().data)
    home.write("Documents/repo/tools/TokenCache.dat", lookalikes.dpapi_token_cache().data)
    home.write("TokenCache.dat", lookalikes.adal_token_cache(3).data)
    home.write("Desktop/TokenCache.dat", b"placeholder\n")  # not a cache: nothing
    home.write(".Azure/TokenCache.dat", b"\x00opaque cache of the tool itself")
    result = run_scan()
    assert found(result) == {
        "Downloads/TokenCache.dat": kinds.POWERSHELL_CACHE,
        "Documents/repo/tools/TokenCache.dat": kinds.POWERSHELL_CACHE,
        "TokenCache.dat": kinds.POWERSHELL_CACHE,
        ".Azure/TokenCache.dat": kinds.POWERSHELL_CACHE,
    }
    assert result.skipped == []


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_download_without_extension_is_found(home: Home, encoding: str) -> None:
    text = payloads.publish_profile().data.decode()  # keeps encoding="utf-8" in its declaration
    home.write("Downloads/contoso-app", text.encode(encoding))
    assert found(run_scan()) == {"Downloads/contoso-app": kinds.PUBLISH_PROFILE}


def test_other_vendors_downloads_are_left_alone(home: Home) -> None:
    home.write("Downloads/client_secret_1-a.apps.googleusercontent.com.json",
               lookalikes.google_oauth_client().data)
    home.write("Downloads/serviceAccountKey.json", lookalikes.google_service_account().data)
    home.write("Downloads/local.settings.json", lookalikes.local_settings_emulator().data)
    home.write("Downloads/appsettings.json", lookalikes.appsettings_placeholders().data)
    home.write("Downloads/contoso-app.PublishSettings",
               payloads.publish_profile(password="REDACTED").data)
    result = run_scan()
    assert result.findings == [] and result.skipped == []


def test_check_names_an_adal_cache_under_any_name(home: Home, tmp_path: Path) -> None:
    payload = lookalikes.adal_token_cache()
    path = tmp_path / "backup-of-profile.bin"
    path.write_bytes(payload.data)
    run = run_subprocess("check", "--json", str(path))
    assert run.code == 1, run.err
    doc = json.loads(run.out)
    assert [(f["kind"], f["details"]["format"]) for f in doc["findings"]] == [
        (kinds.POWERSHELL_CACHE, "adal")]
    for secret in payload.secrets:
        assert secret not in run.out and secret not in run.err
