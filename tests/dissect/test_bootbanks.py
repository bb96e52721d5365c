#!/usr/bin/env python3
"""dissect.target, a forensic framework nobody here wrote, reads what esxi-sim writes.

For every profile of 7.0 and later (the ConfigStore and encrypted eras) and for 6.7U3, a real
`esxi-sim serve` host is named, given an account through pyVmomi (the LocalAccountManager, as
scripts do) and backed up with BackupFirmwareConfiguration; `esxi-sim bootbank --bundle` restores the bundle onto
a fresh host of that build and writes its boot bank as files (boot.cfg, s.v00, state.tgz, ...);
dissect.target's ESXi loader then opens it as it opens a host's boot bank partition: it mounts
the visor tars, unpacks state.tgz, decrypts local.tgz.ve with encryption.info (NONE mode, with
pycryptodome), and parses esx.conf and the ConfigStore's SQLite with its own readers.

What is asserted (facts sections 6 and 7):
- the host name (esx.conf `/adv/Misc/HostName`) and version (`/resourceGroups/version`);
- the account in `/etc/passwd`, and from 7.0.3 also in the ConfigStore's
  `esx/authentication/user_accounts`; from 8.0 the host name also in `esx/advanced_options`;
- 7.0 and later have a ConfigStore, 6.7 has none;
- a TPM-mode bundle: dissect finds the sealed state and says it is likely TPM encrypted; the
  configuration stays unread (the host name is the image's `localhost`, no ConfigStore).

Usage (normally through ci/dissect, which makes the venv):
    ESXI_SIM_BIN=target/debug/esxi-sim python tests/dissect/test_bootbanks.py [-v] [NAME ...]
"""

import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pyvmomi"))
import test_e2e as e2e  # noqa: E402  (server processes, pyVmomi helpers, the test runner)

from dissect.target import Target  # noqa: E402
from dissect.target.filesystems.dir import DirectoryFilesystem  # noqa: E402
from pyVmomi import vim  # noqa: E402

ACCOUNT = "backup-op"


def profiles():
    """(name, version, persistence) of every profile, from `esxi-sim profiles`."""
    out = subprocess.run([e2e.ESXI_SIM_BIN, "profiles"], check=True, capture_output=True,
                         text=True).stdout.splitlines()
    assert out[0].split()[:2] == ["name", "version"] and out[0].split()[-1] == "persistence", out[0]
    return [(c[0], c[1], c[-1]) for c in (line.split() for line in out[1:])]


def version_tuple(v):
    return tuple(int(x) for x in v.split("."))


def serve(profile, seed, hostname, encryption="none"):
    args = [e2e.ESXI_SIM_BIN, "serve", "--listen", e2e.HOST + ":0", "--profile", profile,
            "--password", e2e.PASSWORD, "--seed", str(seed), "--boot-time", e2e.BOOT_TIME,
            "--hostname", hostname, "--encryption", encryption]
    srv, out = e2e._spawn(args, 20.0, lambda buf: b"\n" in buf)
    srv.port = int(out.split("\n", 1)[0].rsplit(":", 1)[1].split("/")[0])
    return srv.port


def backed_up_bootbank(profile, seed, hostname, encryption="none"):
    """A bundle of a named host with one more account, laid out as a boot bank; its path."""
    port = serve(profile, seed, hostname, encryption)
    si = e2e.connect(port)
    si.RetrieveContent().accountManager.CreateUser(
        vim.host.LocalAccountManager.PosixAccountSpecification(
            id=ACCOUNT, password="B4ckup!op", description="backup operator"))
    _, bundle = e2e.backup_bytes(si, port)
    work = Path(tempfile.mkdtemp(prefix="esxi-bootbank-"))
    (work / "bundle.tgz").write_bytes(bundle)
    out = subprocess.run([e2e.ESXI_SIM_BIN, "bootbank", "--bundle", str(work / "bundle.tgz"),
                          "--profile", profile, "--seed", str(seed + 1000),
                          "--out", str(work / "bootbank")],
                         capture_output=True, text=True)
    assert out.returncode == 0, "esxi-sim bootbank: %s%s" % (out.stdout, out.stderr)
    return work / "bootbank", out.stdout


class Captured(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def load(bootbank):
    """Opens a boot bank directory as dissect.target opens a bootbank partition; (target, log)."""
    log = Captured()
    t = Target()
    # What the loader says about a target goes to this logger (its TargetLogAdapter), whose
    # level a new Target sets.
    logger = logging.getLogger("dissect.target.target")
    level = logger.level
    logger.addHandler(log)
    logger.setLevel(logging.DEBUG)
    try:
        t.filesystems.add(DirectoryFilesystem(bootbank))
        t.apply()
        os_name = t.os  # the OS plugin mounts the modules and the state here
    finally:
        logger.removeHandler(log)
        logger.setLevel(level)
    assert os_name == "esxi", "dissect did not take %s for ESXi: %s" % (bootbank, os_name)
    return t, log.lines


def has_configstore(t):
    return t.has_function("configstore.get")


def check_profile(name, version, persistence, seed):
    hostname = "dsx-" + name.replace(".", "-").lower()
    bank, _ = backed_up_bootbank(name, seed, hostname)
    files = sorted(p.name for p in bank.iterdir())
    assert {"boot.cfg", "s.v00", "state.tgz"} <= set(files), files
    t, _ = load(bank)
    assert t.hostname == hostname, "%s: dissect read host name %r" % (name, t.hostname)
    assert t.version == version, "%s: dissect read version %r, want %r" % (
        name, t.version, version)
    passwd = t.fs.path("/etc/passwd").read_text()
    assert ("\n" + ACCOUNT + ":") in passwd, "%s: no %s in /etc/passwd" % (name, ACCOUNT)
    if persistence == "plain":
        assert not has_configstore(t), "%s: a ConfigStore before 7.0" % name
        return
    assert has_configstore(t), "%s: dissect found no ConfigStore" % name
    esx = t.configstore.get("esx")
    assert "system" in esx and "network" in esx, sorted(esx)
    accounts = esx.get("authentication", {}).get("user_accounts", {})
    if version_tuple(version) >= (7, 0, 3):
        assert ACCOUNT in accounts, "%s: %s not in user_accounts: %s" % (
            name, ACCOUNT, sorted(accounts))
    else:
        assert ACCOUNT not in accounts, "%s: 7.0.2 keeps accounts in /etc/shadow only" % name
    misc = esx.get("advanced_options", {}).get("misc", {}).get("", {})
    if version_tuple(version) >= (8, 0, 0):
        vital = misc.get("vital_value") or {}
        assert vital.get("host_name") == hostname, "%s: advanced_options misc: %r" % (name, misc)


def _profile_tests():
    tests = []
    for i, (name, version, persistence) in enumerate(profiles()):
        if persistence == "plain" and name != "6.7U3":
            continue

        def fn(name=name, version=version, persistence=persistence, seed=100 + i):
            check_profile(name, version, persistence, seed)
        tests.append(("test_bootbank_of_%s" % name, fn))
    return tests


def test_tpm_bundle_is_found_but_not_read():
    hostname = "dsx-tpm"
    bank, printed = backed_up_bootbank("8.0U3", 300, hostname, encryption="tpm")
    # Restored onto another board: accepted, then the boot stops (facts 6.5).
    assert "security violation" in printed, printed
    t, log = load(bank)
    assert any("likely TPM encrypted" in line for line in log), log
    assert t.hostname != hostname, "dissect read a TPM-sealed configuration"
    assert not has_configstore(t), "dissect read a TPM-sealed ConfigStore"


TESTS = _profile_tests() + [("test_tpm_bundle_is_found_but_not_read",
                             test_tpm_bundle_is_found_but_not_read)]

if __name__ == "__main__":
    e2e.TESTS = TESTS
    try:
        code = e2e.main(sys.argv[1:])
    finally:
        e2e._kill_all()
    sys.exit(code)
