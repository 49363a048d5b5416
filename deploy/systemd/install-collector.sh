#!/usr/bin/env bash
# Install or update idk-collector on a Linux host with systemd.
#
#   sudo deploy/systemd/install-collector.sh --hosts collector.example.org,10.0.0.5
#
# Safe to run again, e.g. to install a new binary: it creates only what is
# missing. An existing /etc/idk/collector.toml, CA or collector certificate
# is kept, never replaced. It does:
#
#   - create the system user and group idk;
#   - create /etc/idk, /etc/idk/pki and /var/lib/idk;
#   - install the binary as /usr/local/bin/idk-collector;
#   - install collector.toml as /etc/idk/collector.toml if there is none;
#   - create the CA ('idk-collector pki init') and the collector certificate
#     ('idk-collector pki collector --hosts ...') if they are missing;
#   - install the sysctl drop-in for QUIC socket buffers and apply it;
#   - install, enable and (re)start idk-collector.service.
#
# Options:
#   --bin PATH          the idk-collector binary (default: bin/idk-collector
#                       at the top of the source tree, where 'make build'
#                       puts it)
#   --hosts HOST[,...]  DNS names and IP addresses the agents dial; needed
#                       only when the collector certificate is created
#   --org ORG           organisation named in a new CA (optional)
#   --no-start          install and enable, but do not (re)start
set -euo pipefail

readonly user=idk
readonly etc_dir=/etc/idk
readonly pki_dir=/etc/idk/pki
readonly state_dir=/var/lib/idk
readonly data_dir=/var/lib/idk/data
readonly bin_path=/usr/local/bin/idk-collector
readonly config=/etc/idk/collector.toml
readonly unit=idk-collector.service
readonly unit_path=/etc/systemd/system/idk-collector.service
readonly sysctl_path=/etc/sysctl.d/90-idk-quic.conf

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
deploy_dir="$(dirname "${here}")"
src_bin="$(dirname "${deploy_dir}")/bin/idk-collector"
hosts=""
org=""
start=1

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

die() {
	echo "install-collector: $*" >&2
	exit 1
}

while [[ $# -gt 0 ]]; do
	case "$1" in
	--bin)
		[[ $# -ge 2 ]] || die "--bin needs a path"
		src_bin="$2"
		shift 2
		;;
	--hosts)
		[[ $# -ge 2 ]] || die "--hosts needs a list of names"
		hosts="$2"
		shift 2
		;;
	--org)
		[[ $# -ge 2 ]] || die "--org needs a name"
		org="$2"
		shift 2
		;;
	--no-start)
		start=0
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage >&2
		die "unknown argument: $1"
		;;
	esac
done

[[ ${EUID} -eq 0 ]] || die "run as root (sudo)"
[[ -x "${src_bin}" ]] || die "no executable at ${src_bin}: run 'make build' or pass --bin"
# Decide about the certificate before changing anything, so that a missing
# --hosts does not leave a half-done installation.
if [[ ! -e "${pki_dir}/collector.crt" && -z "${hosts}" ]]; then
	die "the collector certificate must be created: pass --hosts with every name and address the agents dial"
fi
umask 022

# The service account: no login, no home of its own beyond the state dir.
if ! getent group "${user}" >/dev/null; then
	groupadd --system "${user}"
fi
if ! getent passwd "${user}" >/dev/null; then
	useradd --system --gid "${user}" --home-dir "${state_dir}" --no-create-home \
		--shell /usr/sbin/nologin --comment "ИДК collector" "${user}"
fi

# Configuration is root's, readable by the service. The PKI folder holds
# the CA key too, so only root and the group get in.
install -d -m 0755 -o root -g root "${etc_dir}"
install -d -m 0750 -o root -g "${user}" "${pki_dir}"
install -d -m 0750 -o "${user}" -g "${user}" "${state_dir}" "${data_dir}"

# A running collector keeps the old binary until the restart below.
install -m 0755 -o root -g root "${src_bin}" "${bin_path}"

if [[ -e "${config}" ]]; then
	echo "keeping ${config}"
else
	install -m 0640 -o root -g "${user}" "${deploy_dir}/collector.toml" "${config}"
	echo "installed ${config}: review it"
fi

if [[ -e "${pki_dir}/ca.crt" ]]; then
	echo "keeping the CA in ${pki_dir}"
else
	init_args=(--dir "${pki_dir}")
	if [[ -n "${org}" ]]; then
		init_args+=(--org "${org}")
	fi
	"${bin_path}" pki init "${init_args[@]}"
fi
if [[ -e "${pki_dir}/collector.crt" ]]; then
	echo "keeping ${pki_dir}/collector.crt"
else
	"${bin_path}" pki collector --dir "${pki_dir}" --hosts "${hosts}"
fi
# The service reads its own key; the CA key, which signs certificates,
# stays root's alone (or off this host altogether, if it has been moved).
# Set on every run: reissuing a certificate writes a fresh root-only key.
if [[ -e "${pki_dir}/ca.key" ]]; then
	chown root:root "${pki_dir}/ca.key"
	chmod 0600 "${pki_dir}/ca.key"
fi
chown root:"${user}" "${pki_dir}/collector.key"
chmod 0640 "${pki_dir}/collector.key"

install -m 0644 -o root -g root "${here}/90-idk-quic.conf" "${sysctl_path}"
# Containers may refuse: QUIC works without, only slower.
if ! sysctl -q -p "${sysctl_path}"; then
	echo "warning: could not apply ${sysctl_path}; QUIC throughput may be limited" >&2
fi

install -m 0644 -o root -g root "${here}/${unit}" "${unit_path}"
systemctl daemon-reload
systemctl enable "${unit}"
"${bin_path}" -config "${config}" -check
if [[ ${start} -eq 1 ]]; then
	# Restart rather than start, so that an update takes effect. Agents
	# reconnect and resend whatever was not stored.
	systemctl restart "${unit}"
	systemctl --no-pager --lines=5 status "${unit}" || true
fi

cat <<EOF

idk-collector is installed. Next:
  - allow UDP port 7443 (listen.quic) from the scanner PCs in the firewall;
  - issue a certificate for each ИДК:
      sudo ${bin_path} pki agent --dir ${pki_dir} --num-idk NUM_IDK --kod-to KOD_TO
    and copy ${pki_dir}/ca.crt with agent-NUM_IDK.crt and .key to that PC;
  - follow the log: journalctl -u ${unit} -f
EOF
