"""vault's master job cache: Salt's own (local_cache), without a single return.

Installed by `vault master setup` as `returners/vault_jobs.py` in the master's
extension_modules, and named in its master.d drop-in as `master_job_cache` (beside
`job_cache: False`). Salt keeps each job's load (what was run, on which minions) and,
unless told otherwise, every minion's return; for a job a minion starts itself
(`salt-call` there), the load it keeps holds that return too. A return may hold a
secret (a state that prints one, `salt-call pillar.get` run on a minion), and the
master holds every environment's identity. So this keeps what Salt's CLI needs to
follow a job, and drops every return: vault reads each as it arrives, from the event
bus.
"""

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


def returner(load):  # pylint: disable=unused-argument
    """A minion's return is never kept."""


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
