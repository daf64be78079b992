# shellcheck shell=bash disable=SC2034
# Names and addresses shared by cluster/vcluster (up, down, status), cluster/netns-agent and
# cluster/mpirun. Sourced, not executed.
#
# Everything the virtual cluster makes carries one prefix, so it can be found and removed
# without touching anything else on the machine, and a second cluster (the tests') can run
# beside a user's by choosing another prefix and subnet:
#   SDPT_VCLUSTER_PREFIX   (default sdpt)       namespaces <prefix>-h1 … <prefix>-hN, <prefix>-net
#   SDPT_VCLUSTER_SUBNET   (default 10.213.77)  the /24 the hosts live in: host i is <subnet>.i
# The hosts get no default route and the bridge lives in its own namespace, so nothing the
# cluster sends can leave these namespaces; the root namespace gets no interface or address.

# ip and tc live in /usr/sbin, which a non-root or CI PATH may lack.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/sbin:/sbin" ;; esac

VC_PREFIX="${SDPT_VCLUSTER_PREFIX:-sdpt}"
VC_SUBNET="${SDPT_VCLUSTER_SUBNET:-10.213.77}"

vc_die() { echo "error: $*" >&2; exit 1; }

# A short lower-case prefix: namespace names stay readable and hostnames valid.
[[ "$VC_PREFIX" =~ ^[a-z][a-z0-9]{0,11}$ ]] \
    || vc_die "SDPT_VCLUSTER_PREFIX='$VC_PREFIX': use 1-12 lower-case letters and digits, starting with a letter"
# Only private (RFC 1918) /24s: the cluster must never claim someone else's addresses.
if [[ "$VC_SUBNET" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]]; then
    _a=${BASH_REMATCH[1]} _b=${BASH_REMATCH[2]} _c=${BASH_REMATCH[3]}
    { ((_a == 10 && _b <= 255 && _c <= 255)) || ((_a == 172 && _b >= 16 && _b <= 31 && _c <= 255)) \
        || ((_a == 192 && _b == 168 && _c <= 255)); } \
        || vc_die "SDPT_VCLUSTER_SUBNET='$VC_SUBNET' is not a private /24 (10.x.y, 172.16-31.y or 192.168.y)"
else
    vc_die "SDPT_VCLUSTER_SUBNET='$VC_SUBNET': give the first three octets of a /24, e.g. 10.213.77"
fi

VC_CIDR="$VC_SUBNET.0/24"
VC_NET_NS="$VC_PREFIX-net"        # holds the bridge that joins the hosts
VC_BRIDGE="br0"                   # inside $VC_NET_NS
VC_HOST_IF="eth0"                 # each host's end of its veth pair, inside the host's namespace
VC_STATE="/run/$VC_PREFIX-vcluster"   # hostfile and settings of the cluster that is up; /run is gone after a reboot, like the namespaces

vc_host_ns() { echo "$VC_PREFIX-h$1"; }       # host i's namespace, also its hostname
vc_host_addr() { echo "$VC_SUBNET.$1"; }
vc_bridge_port() { echo "h$1"; }              # host i's veth end on the bridge, inside $VC_NET_NS

# The host numbers whose namespaces exist, ascending.
vc_hosts_up() {
    ip netns list 2>/dev/null | awk '{print $1}' | sed -n "s/^$VC_PREFIX-h\([0-9][0-9]*\)\$/\1/p" | sort -n
}
vc_net_up() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$VC_NET_NS"; }

# Runs a command as if logged in on host i: inside its network namespace, with its own
# hostname (a private UTS namespace), so MPI_Get_processor_name and error messages name the
# host as they would on a real node. `ip netns exec` and `unshare` exec rather than fork, so
# the command keeps the caller's process id (mpirun signals the agent it started).
vc_exec_on_host() {
    local i="$1"; shift
    # shellcheck disable=SC2016  # $1 and $@ belong to the inner shell
    exec ip netns exec "$(vc_host_ns "$i")" unshare --uts -- \
        /bin/sh -c 'printf "%s\n" "$1" > /proc/sys/kernel/hostname || exit 1; shift; exec "$@"' \
        vc-enter "$(vc_host_ns "$i")" "$@"
}
