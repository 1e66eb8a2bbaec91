#!/bin/sh
# install.sh installs kfp-box as a systemd service, offline, from one of:
#   install.sh kfp-box_VERSION_ARCH.deb          a Debian package (dpkg -i)
#   install.sh kfp-box_VERSION_linux_ARCH.tar.gz a plain tarball (binaries to /usr/local/bin)
#   install.sh DIR                               the file for this machine's architecture in DIR
#                                                (a copy of dist/ on an air-gapped machine)
#   install.sh                                   the directory install.sh is in
# It checks the prerequisites (containerd and runc are optional: it prints the apt command),
# enables and starts the service, and prints the URL, the S3 endpoint and where the
# credentials are, never a secret. Options: --no-start (install and enable only),
# --root DIR (install into another root; no service is started there).
set -eu

say() { printf 'kfp-box install: %s\n' "$*"; }
die() { printf 'kfp-box install: %s\n' "$*" >&2; exit 1; }

start=1
root=""
src=""
while [ $# -gt 0 ]; do
	case "$1" in
	--no-start) start=0 ;;
	--root) [ $# -ge 2 ] || die "--root needs a directory"; root=$2; shift ;;
	--root=*) root=${1#--root=} ;;
	-h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) [ -z "$src" ] || die "one file or directory, please (see --help)"; src=$1 ;;
	esac
	shift
done
[ -n "$src" ] || src=$(dirname "$0")
[ "$(id -u)" = 0 ] || die "run as root (sudo sh $0 ...): it installs a system service"
[ "$(uname -s)" = Linux ] || die "kfp-box runs on Linux only"

# This machine's architecture, in Debian's and Go's words (the same for these two).
case "$(uname -m)" in
x86_64 | amd64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
*) die "no kfp-box build for $(uname -m) (amd64 and arm64 are built)" ;;
esac
[ -z "${KFPBOX_INSTALL_ARCH:-}" ] || arch=$KFPBOX_INSTALL_ARCH

if [ -d "$src" ]; then
	# The newest matching file: a .deb where dpkg exists, else the tarball.
	pick() { ls -1 "$src"/$1 2>/dev/null | sort -V | tail -n 1; }
	file=""
	command -v dpkg >/dev/null 2>&1 && file=$(pick "kfp-box_*_$arch.deb")
	[ -n "$file" ] || file=$(pick "kfp-box_*_linux_$arch.tar.gz")
	[ -n "$file" ] || die "no kfp-box_*_$arch.deb or kfp-box_*_linux_$arch.tar.gz in $src"
	if [ -f "$src/SHA256SUMS" ] && command -v sha256sum >/dev/null 2>&1; then
		(cd "$src" && grep " $(basename "$file")\$" SHA256SUMS | sha256sum -c --status) ||
			die "$file does not match $src/SHA256SUMS"
		say "checksum of $(basename "$file") matches SHA256SUMS"
	fi
else
	file=$src
fi
[ -f "$file" ] || die "$file: no such file"

case "$file" in
*_"$arch".deb | *_linux_"$arch".tar.gz) ;;
*.deb | *.tar.gz) die "$file is not built for this machine ($arch)" ;;
*) die "$file: want a .deb or a .tar.gz" ;;
esac

# Prerequisites. containerd and runc are optional: without them tasks run on the host.
missing=""
for c in containerd runc; do
	PATH=$PATH:/usr/sbin:/sbin command -v $c >/dev/null 2>&1 || missing="$missing $c"
done
if [ -n "$missing" ]; then
	say "optional:$missing not installed; tasks will run on the host (no container images)."
	say "  for container images: apt-get install --no-install-recommends$missing"
fi
command -v systemctl >/dev/null 2>&1 || { [ -n "$root" ] || say "no systemctl here: installed, but not started as a service"; start=0; }
[ -z "$root" ] || start=0

unit_dir=$root/lib/systemd/system
bin=/usr/bin
case "$file" in
*.deb)
	command -v dpkg >/dev/null 2>&1 || die "dpkg is missing: use the .tar.gz instead"
	say "installing $file"
	if [ -n "$root" ]; then
		dpkg --root="$root" --force-not-root -i "$file"
	else
		dpkg -i "$file"
	fi
	;;
*.tar.gz)
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	tar -xzf "$file" -C "$tmp"
	dir=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d | head -n 1)
	[ -x "$dir/kfp-box" ] || die "$file holds no kfp-box binary"
	say "installing $file into /usr/local/bin"
	bin=/usr/local/bin
	unit_dir=$root/etc/systemd/system
	install -d "$root$bin" "$unit_dir" "$root/etc/kfp-box"
	install -m 0755 "$dir/kfp-box" "$dir/kfp-box-init" "$root$bin/"
	sed "s|/usr/bin/kfp-box|$bin/kfp-box|" "$dir/kfp-box.service" >"$unit_dir/kfp-box.service"
	if [ -f "$root/etc/kfp-box/config.yaml" ]; then
		say "kept the existing /etc/kfp-box/config.yaml"
	else
		install -m 0644 "$dir/config.yaml" "$root/etc/kfp-box/config.yaml"
	fi
	if [ -z "$root" ] && ! getent passwd kfp-box-task >/dev/null 2>&1; then
		useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin kfp-box-task
	fi
	install -d -m 0700 "$root/var/lib/kfp-box"
	;;
esac

[ -f "$unit_dir/kfp-box.service" ] || die "no kfp-box.service in $unit_dir after the install"

# The configured addresses, read back from the config file (plain "key: value" lines).
conf=$root/etc/kfp-box/config.yaml
value() { sed -n "s/^$1:[[:space:]]*\\([^#[:space:]]*\\).*/\\1/p" "$conf" | tail -n 1; }
listen=$(value listen); listen=${listen:-127.0.0.1:8888}
s3=$(value s3_listen); s3=${s3:-127.0.0.1:9000}
data=$(value data_dir); data=${data:-/var/lib/kfp-box}
case "$listen" in
127.* | localhost:* | \[::1\]:*) url=http://$listen ;;
*) url=https://$listen ;;
esac

if [ "$start" = 1 ]; then
	systemctl daemon-reload
	systemctl enable kfp-box.service >/dev/null 2>&1
	systemctl restart kfp-box.service
	say "waiting for the service to answer on $url"
	# healthz with curl or wget; without either, systemd's word that the service is active.
	healthy() {
		if command -v curl >/dev/null 2>&1; then
			curl -fsS -o /dev/null "$url/apis/v2beta1/healthz" 2>/dev/null
		elif command -v wget >/dev/null 2>&1; then
			wget -q -O /dev/null "$url/apis/v2beta1/healthz" 2>/dev/null
		else
			systemctl is-active --quiet kfp-box.service
		fi
	}
	i=0
	until healthy; do
		i=$((i + 1))
		if [ $i -ge 60 ]; then
			systemctl --no-pager status kfp-box.service >&2 || true
			die "the service did not answer in 60 s; see: journalctl -u kfp-box"
		fi
		sleep 1
	done
	say "the service is running (systemctl status kfp-box; logs: journalctl -u kfp-box)"
else
	say "installed; start it with: systemctl enable --now kfp-box"
fi

cat <<EOT
kfp-box: $($root$bin/kfp-box version 2>/dev/null || echo "$root$bin/kfp-box")
  web UI and KFP API  $url
  S3 endpoint         http://$s3 (access key and secret: sudo kfp-box s3 credentials --data-dir $data)
  admin token         $data/auth/admin-token (root only); kubeconfig: $data/auth/kubeconfig
  web UI login        sudo kfp-box token login-link   (a one-time link, 15 minutes)
  configuration       /etc/kfp-box/config.yaml (then: systemctl restart kfp-box)
  data                $data (kept when the package is removed; dpkg --purge deletes it)
EOT
