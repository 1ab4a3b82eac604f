"""vault's ext_pillar: each minion gets its own environment's secrets, by minion ID only.

Installed by `vault master setup` as `pillar/vault.py` in the master's
extension_modules, and named in its master.d drop-in as `ext_pillar: [{vault: ROOT}]`.
For each pillar it compiles, the master calls `ext_pillar` with the minion's
authenticated ID. This asks the vault binary installed beside it, which looks the ID up
in the master's record (set by `vault master accept`, never from grains), verifies the
environment's signed secrets as a member's machine does (signature, grant chain,
roster, project identity, no rollback) and decrypts them in memory. The values come
through a pipe into this process and leave it only in Salt's pillar reply, encrypted to
that minion's key. Nothing is written to disk, and nothing is logged but vault's
one-line reasons, which never hold a value.
"""

import json
import os
import subprocess

__virtualname__ = "vault"


def __virtual__():
    return __virtualname__


def ext_pillar(minion_id, pillar, root="/"):  # pylint: disable=unused-argument
    binary = os.path.join(root, "usr/local/bin/vault")
    state = os.path.join(root, "var/lib/vault/master")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": state, "XDG_STATE_HOME": state}
    proc = subprocess.run(
        [binary, "--color", "never", "master", "pillar", "--root", root, "--", minion_id],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        # Raised, the reason reaches the minion's run as a pillar error, and its states
        # fail rather than run without their secrets.
        reason = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(" ".join(reason) or f"vault exited with {proc.returncode}")
    return json.loads(proc.stdout)
