#!/bin/bash
# Makes a test CA and one certificate per role for ila-server's mTLS
# (docs/security.md). For tests and trials only: the CA key is left on disk
# next to the certificates.
#
#   deploy/make-test-certs.sh DIR [SERVER_NAME...] [--host-locator LOC...]
#
# DIR gets ca.pem/ca.key, server.pem/server.key (SANs: localhost, 127.0.0.1,
# ::1 and each SERVER_NAME), and for each role scheduler, router, host,
# operator and admin ROLE.pem/ROLE.key with the SAN URI ila://role/ROLE; the
# host certificate names each --host-locator (default 2001:db8:1:0) as
# ila://locator/LOC. Also nobody.pem/nobody.key: signed by the CA but with
# no role, and rogue-ca.pem + rogue.pem/rogue.key: an admin certificate from
# a CA the server does not trust.
set -euo pipefail
dir=${1:?usage: make-test-certs.sh DIR [SERVER_NAME...] [--host-locator LOC...]}
shift
names=() locators=()
while [ $# -gt 0 ]; do
  case $1 in
    --host-locator) locators+=("${2:?--host-locator needs a locator}"); shift 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
[ ${#locators[@]} -gt 0 ] || locators=(2001:db8:1:0)
mkdir -p "$dir"
cd "$dir"
days=3650

ca() {  # name subject
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$1.key" -out "$1.pem" -days $days -subj "$2" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

leaf() {  # name ca subject san usage
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$1.key" -out "$1.csr" -subj "$3" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=%s\n' \
    "$5" "$4" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" \
    -CAcreateserial -out "$1.pem" -days $days -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

ca ca "/CN=ILA test CA"
server_san="DNS:localhost,IP:127.0.0.1,IP:::1"
for n in "${names[@]}"; do
  if [[ $n =~ ^[0-9.]+$ || $n == *:* ]]; then server_san+=",IP:$n"; else server_san+=",DNS:$n"; fi
done
leaf server ca "/CN=ila-server" "$server_san" serverAuth
for role in scheduler router operator admin; do
  leaf "$role" ca "/CN=ila-$role" "URI:ila://role/$role" clientAuth
done
host_san="URI:ila://role/host"
for l in "${locators[@]}"; do host_san+=",URI:ila://locator/$l"; done
leaf host ca "/CN=ila-host" "$host_san" clientAuth
leaf nobody ca "/CN=ila-nobody" "DNS:nobody.invalid" clientAuth
ca rogue-ca "/CN=not the ILA CA"
leaf rogue rogue-ca "/CN=ila-rogue" "URI:ila://role/admin" clientAuth
rm -f ./*.srl
chmod 600 ./*.key
echo "make-test-certs: CA, server and role certificates in $PWD"
