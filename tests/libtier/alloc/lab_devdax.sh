#!/bin/bash
# Inside the lab (pmem preset, --no-setup): make the NVDIMM a device-DAX
# device left in devdax mode (not onlined as RAM), then run the lab tests
# with it as libtier's devdax tier. Usage: lab_devdax.sh TEST_BINARY [ARGS...]
set -euo pipefail
region=""
for ((i = 0; i < 300; i++)); do
  for d in /sys/bus/nd/devices/region*; do
    [[ -e $d && $(<"$d/../provider") == ACPI.NFIT ]] && region=$(basename "$d")
  done
  [[ -n $region ]] && break
  sleep 0.1
done
[[ -n $region ]] || { echo "lab_devdax: no NFIT region" >&2; exit 1; }
out=$(ndctl create-namespace -f -e "namespace${region#region}.0" -m devdax -a 2M)
dax=$(sed -n 's/.*"chardev":"\([^"]*\)".*/\1/p' <<<"$out" | head -1)
[[ -z $dax ]] && dax=$(grep -o '"chardev":"[^"]*"' <<<"$out" | head -1 | cut -d'"' -f4)
[[ -c /dev/$dax ]] || { echo "lab_devdax: no device-DAX device in: $out" >&2; exit 1; }
echo "lab_devdax: /dev/$dax ($(cat /sys/bus/dax/devices/$dax/size) bytes)"
LIBTIER_DEVDAX=/dev/$dax exec "$@"
