# Shared by the set-up scripts: install what is missing, allow Open MPI to run as root.
# Sourced, not executed.

require_packages() {
    local missing=()
    # iproute2: `ip` and `tc` for the virtual cluster (cluster/up) that VirtualClusterTests
    # makes; minimal Debian images (containers, CI) do not have it.
    for pkg in libopenmpi-dev openmpi-bin libopenblas-dev libturbojpeg0-dev libjpeg62-turbo-dev libpng-dev pkg-config iproute2; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        echo "==> installing: ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if ! command -v swift >/dev/null 2>&1; then
        echo "error: the Swift toolchain (swift) is not on PATH; install Swift 6 first" >&2
        exit 1
    fi
}

allow_mpi_as_root() {
    # Open MPI refuses to start as root unless both variables are set. Containers and CI
    # machines often run everything as root, so we set them there, and say so.
    if [ "$(id -u)" -eq 0 ]; then
        export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
        echo "==> running as root: set OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 so mpirun may start"
    fi
}

local_cores() { nproc 2>/dev/null || getconf _NPROCESSORS_ONLN; }
