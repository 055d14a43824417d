"""Third-party files in the dashboard's static folder are exactly what VENDORED.json records (version, licence,
checksum), so an update is deliberate and reviewable."""

from __future__ import annotations

import hashlib
import json

from order_functions.interface.dashboard import STATIC_DIR, static_file

VENDOR = STATIC_DIR / "vendor"


def test_every_vendored_file_matches_its_record_and_ships_its_licence() -> None:
    records = {k: v for k, v in json.loads((VENDOR / "VENDORED.json").read_text()).items() if not k.startswith("_")}
    assert set(records) == {"msal-browser.min.js"}
    for name, record in records.items():
        body = (VENDOR / name).read_bytes()
        assert hashlib.sha256(body).hexdigest() == record["sha256"], name
        assert body.startswith(f"/*! {record['package']} v{record['version']} ".encode()), name
        licence = (VENDOR / record["licence_file"]).read_text()
        assert record["license"] == "MIT" and "MIT License" in licence and "Microsoft" in licence
        assert static_file(f"vendor/{name}") == VENDOR / name  # served by the app itself
        assert record["npm_integrity"].startswith("sha512-")
    vendored = {p.name for p in VENDOR.iterdir()}
    assert vendored == {"VENDORED.json", *records, *(r["licence_file"] for r in records.values())}
