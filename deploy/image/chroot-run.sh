#!/usr/bin/env bash
# Runs a command from an image's own root filesystem the way the Helm chart runs the
# container, where `podman run` is not available (this VM refuses the OCI runtime's rlimits):
#
#   the image's root filesystem, mounted read-only       (readOnlyRootFilesystem: true)
#   a fresh tmpfs on /tmp, the only writable place        (the chart's /tmp emptyDir)
#   the given numeric user and group                      (runAsUser / runAsGroup 10001)
#   the image's WORKDIR as the working directory (--workdir; default /)
#   the host's network namespace (loopback = the pod network of the test)
#
#   chroot-run.sh ROOTFS UID:GID [--workdir DIR] COMMAND [ARG...]
#
# ROOTFS is e.g. `podman image mount IMAGE`. The mounts live in a private mount namespace
# (unshare) and vanish with the process; the command replaces this script (same pid), so a
# SIGTERM sent to it reaches the service itself. The caller passes the image's environment
# (its ENV: PATH, HOME, ...). Needs root.
set -euo pipefail

if [ "$#" -lt 3 ]; then
    echo "usage: $0 ROOTFS UID:GID [--workdir DIR] COMMAND [ARG...]" >&2
    exit 2
fi
rootfs="$1" user="$2" workdir=/
shift 2
if [ "${1:-}" = "--workdir" ]; then
    workdir="$2"
    shift 2
fi
[ -d "$rootfs/tmp" ] || { echo "chroot-run.sh: $rootfs is not a root filesystem" >&2; exit 2; }

# host tools by absolute path: PATH is the image's, for the command
tool() { PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" command -v "$1"; }
unshare_bin="$(tool unshare)" mount_bin="$(tool mount)" chroot_bin="$(tool chroot)"

exec "$unshare_bin" --mount --propagation private -- /bin/sh -c '
set -e
mount=$1; chroot=$2; src=$3; user=$4; workdir=$5; shift 5
# a mount point that exists only in this namespace: nothing is left behind on the host
"$mount" -t tmpfs -o size=1m,mode=0700 tmpfs /mnt
root=/mnt/root
/bin/mkdir "$root"
"$mount" --bind "$src" "$root"
"$mount" -o remount,bind,ro "$root"
"$mount" -t tmpfs -o mode=1777,nosuid,nodev,size=256m tmpfs "$root/tmp"
"$mount" --rbind /dev "$root/dev"
"$mount" -t proc -o nosuid,nodev,noexec proc "$root/proc"
# env (from the image) changes into the working directory, then execs the command
exec "$chroot" --userspec="$user" "$root" /usr/bin/env --chdir="$workdir" "$@"
' chroot-run "$mount_bin" "$chroot_bin" "$rootfs" "$user" "$workdir" "$@"
