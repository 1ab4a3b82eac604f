"""vault's master job cache: Salt's own (local_cache), without a single return.

Installed by `vault master setup` as `returners/vault_jobs.py` in the master's
extension_modules, and named in its master.d drop-in as `master_job_cache` (beside
`job_cache: False`). Salt keeps each job's load (what was run, on which minions) and,
unless told otherwise, every minion's return; for a job a minion starts itself
(`salt-call` there), the load it keeps holds that return too. A return may hold a
secret (a state that prints one, `salt-call pillar.get` run on a minion), and the
master holds every environment's identity. So this keeps what Salt's CLI needs to
follow a job, and drops every return: vault reads each as it arrives, from the event
bus, and checks it against the digest this keeps of each authenticated return.
"""

import hashlib
import os

import salt.loader

__virtualname__ = "vault_jobs"

_LOCAL = []


def __virtual__():
    return __virtualname__


def _local(name):
    # Loaded once, lazily: a loader finds its functions when asked for them.
    if not _LOCAL:
        _LOCAL.append(salt.loader.returners(__opts__, {}, whitelist=["local_cache"]))
    return _LOCAL[0][f"local_cache.{name}"]


def prep_jid(nocache=False, passed_jid=None, recurse_count=0):
    return _local("prep_jid")(nocache=nocache, passed_jid=passed_jid, recurse_count=recurse_count)


def _summary(ret):
    """What a return says of each state (its result, whether it changed something), in
    the form vault computes it from Salt's JSON: never a value."""
    if not isinstance(ret, dict) or not ret:
        return "not states\n"
    lines = []
    for key in sorted(str(k) for k in ret):
        state = ret.get(key)
        state = state if isinstance(state, dict) else {}
        result = {True: "true", False: "false"}.get(state.get("result"), "null")
        changed = "c" if state.get("changes") else "-"
        lines.append(f"{key}\0{result}\0{changed}\n")
    return "".join(lines)


def returner(load):
    """A minion's return is never kept; that this minion returned (Salt authenticated
    it) and the digest of what it says of its states is, for vault to tell its return
    from an event another minion forged in its name."""
    jid, minion = str(load.get("jid", "")), str(load.get("id", ""))
    if not jid.isdigit() or not minion or "/" in minion or minion.startswith("."):
        return
    root = os.path.dirname(os.path.normpath(__opts__["extension_modules"]))
    folder = os.path.join(root, "returns", jid)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    digest = hashlib.sha256(_summary(load.get("return")).encode("utf-8")).hexdigest()
    tmp = os.path.join(folder, f".{minion}.tmp")
    with open(tmp, "w", encoding="ascii") as f:
        f.write(digest)
    os.replace(tmp, os.path.join(folder, minion))


def save_load(jid, clear_load, minions=None, recurse_count=0):
    load = {k: v for k, v in clear_load.items() if k != "return"}
    return _local("save_load")(jid, load, minions=minions, recurse_count=recurse_count)


def save_minions(jid, minions, syndic_id=None):
    return _local("save_minions")(jid, minions, syndic_id=syndic_id)


def get_load(jid):
    return _local("get_load")(jid)


def get_jid(jid):
    return _local("get_jid")(jid)


def get_jids():
    return _local("get_jids")()


def get_jids_filter(count, filter_find_job=True):
    return _local("get_jids_filter")(count, filter_find_job=filter_find_job)


def clean_old_jobs():
    return _local("clean_old_jobs")()


def update_endtime(jid, time):
    return _local("update_endtime")(jid, time)


def get_endtime(jid):
    return _local("get_endtime")(jid)
