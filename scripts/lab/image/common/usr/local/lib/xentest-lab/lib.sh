# The lab's shell functions, in dom0 and the domU: one line per fact,
# "CHECK name: OK|FAIL what was seen", on the console and in
# /var/lib/xentest-lab/checks.txt (the host reads it from the disk image).
S=/var/lib/xentest-lab
out=$S/checks.txt
mkdir -p "$S"
say() { printf '%s\n' "$*" >/dev/console; }
check() { printf 'CHECK %s: %s\n' "$1" "$2" | tee -a "$out" >/dev/console; }
said() { # the summary line of a log, else its last line
	grep -E '^(Summary: |(sysfs|proc|xl) \()' "$1" | tail -n 1 | grep . || tail -n 1 "$1"
}
run() { # name, command...
	name=$1; shift
	log=$S/$name.log
	if "$@" >"$log" 2>&1; then check "$name" "OK $(said "$log")"; else check "$name" "FAIL exit $? $(said "$log")"; fi
}
hypervisor() { echo "$(cat /sys/hypervisor/version/major).$(cat /sys/hypervisor/version/minor)$(cat /sys/hypervisor/version/extra)"; }
