"""How much CPU other work took on this machine while a measurement ran: the scale-out script
snapshots every process's CPU time before a run and compares after it, leaving out its own
process tree and whatever runs inside its virtual cluster's network namespaces (its ranks
there are children of Open MPI's daemons, not of the script).

    python3 -m scaleout.others snapshot FILE            # before the run
    python3 -m scaleout.others cores FILE ROOT_PID       # after it: other work, in cores

A process's CPU time here is utime + stime + cutime + cstime (/proc/PID/stat fields 14-17):
the children a process has waited for count in its cutime, so the compiler processes a build
starts and ends during the run are still counted, in the build's driver; init's children's
time is left out (it reaps daemonized orphans, ours included). Linux only.
"""
import json
import os
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    # The command name may contain spaces and parentheses: split after its closing one.
    fields = text[text.rindex(")") + 2:].split()
    if fields[0] == "Z":
        # A zombie: its namespace can no longer be read, and its time moves to whoever reaps
        # it (counted there). Open MPI's daemons on the virtual cluster end this way, with our
        # ranks' time in them.
        raise ValueError("zombie")
    ppid = int(fields[1])
    # Children's time counts, except init's: init reaps orphans, among them the daemons
    # Open MPI starts on the virtual cluster (orted --daemonize) with our ranks' time in them.
    cpu = sum(int(v) for v in fields[11:13 if int(pid) == 1 else 15])
    start = int(fields[19])
    return ppid, cpu, start


def own_namespaces():
    """Network namespace ids of this script's virtual cluster: /run/netns/<prefix>-h<i> and
    <prefix>-net, prefix $SDPT_VCLUSTER_PREFIX (cluster/vcluster-common.sh). Another cluster on
    the machine (someone else's prefix) is other work."""
    prefix = os.environ.get("SDPT_VCLUSTER_PREFIX", "sdpt")
    ids = set()
    try:
        names = os.listdir("/run/netns")
    except OSError:
        return ids
    for name in names:
        rest = name[len(prefix) + 1:] if name.startswith(prefix + "-") else None
        if rest is not None and (rest == "net" or (rest[:1] == "h" and rest[1:].isdigit())):
            try:
                ids.add(f"net:[{os.stat(os.path.join('/run/netns', name)).st_ino}]")
            except OSError:
                pass
    return ids


def snapshot():
    ours = own_namespaces()
    processes = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            ppid, cpu, start = _stat(name)
        except (OSError, ValueError):
            continue
        try:
            in_ours = os.readlink(f"/proc/{name}/ns/net") in ours
        except OSError:
            in_ours = False   # cannot tell: count it as other work
        processes[name] = {"ppid": ppid, "cpu": cpu, "start": start, "our_ns": in_ours}
    return {"time": time.monotonic(), "processes": processes}


def _tree(processes, root_pid):
    mine = {str(root_pid)}
    changed = True
    while changed:   # descendants of root_pid, whatever order /proc listed them in
        changed = False
        for pid, p in processes.items():
            if pid not in mine and str(p["ppid"]) in mine:
                mine.add(pid)
                changed = True
    return mine


def other_cores(before, after, root_pid):
    """CPU used by processes outside root_pid's tree and our namespaces, in cores (seconds of
    CPU per second of wall time) between the two snapshots. A process that ended moved its CPU
    time into its parent's cutime when reaped: what it had used before the first snapshot is
    taken off again, so only the time used in between counts."""
    def others(snap):
        mine = _tree(snap["processes"], root_pid)
        return {pid: p for pid, p in snap["processes"].items() if pid not in mine and not p["our_ns"]}
    old, new = others(before), others(after)
    used = 0
    for pid, p in new.items():
        was = old.get(pid)
        used += p["cpu"] - (was["cpu"] if was and was["start"] == p["start"] else 0)
    for pid, p in old.items():
        now = new.get(pid)
        if not now or now["start"] != p["start"]:
            used -= p["cpu"]
    wall = max(after["time"] - before["time"], 1e-6)
    return max(used, 0) / TICKS / wall


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "snapshot":
        with open(sys.argv[2], "w") as f:
            json.dump(snapshot(), f)
        return 0
    if len(sys.argv) >= 4 and sys.argv[1] == "cores":
        with open(sys.argv[2]) as f:
            before = json.load(f)
        print(f"{other_cores(before, snapshot(), int(sys.argv[3])):.2f}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
