#!/usr/bin/env bash
# gen-test-certs.sh DIR: throw-away TLS material for tests, valid for 2 days,
# written to DIR (EC P-256, PEM, keys unencrypted):
#   ca.pem ca.key                  the test CA
#   server.pem server.key          signed by it; SAN localhost, 127.0.0.1
#   client.pem client.key          signed by it; for mutual TLS
#   other-ca.pem other-ca.key      an unrelated CA (the "wrong CA")
#   other-client.pem other-client.key  signed by the unrelated CA
# Used by tests/support/switchboard/testing/tls_certs.h and
# scripts/servers/rabbitmq.sh. Diagnostics go to DIR/openssl.log.
set -euo pipefail
dir="${1:?usage: gen-test-certs.sh DIR}"
mkdir -p "$dir"
cd "$dir"
exec 3>>openssl.log
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

ca() {  # ca NAME CN
  openssl req -x509 "${ec[@]}" -keyout "$1.key" -out "$1.pem" -days 2 -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign >&3 2>&1
}

leaf() {  # leaf NAME CN ISSUER EXTENDED_KEY_USAGE SAN
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\nsubjectAltName=%s\n' \
    "$4" "$5" > "$1.ext"
  openssl req "${ec[@]}" -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" >&3 2>&1
  openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial \
    -out "$1.pem" -days 2 -extfile "$1.ext" >&3 2>&1
  rm -f "$1.csr" "$1.ext"
}

ca ca sb-test-ca
leaf server localhost ca serverAuth "DNS:localhost,IP:127.0.0.1"
leaf client sb-test-client ca clientAuth "DNS:sb-test-client"
ca other-ca sb-other-ca
leaf other-client sb-other-client other-ca clientAuth "DNS:sb-other-client"
chmod 644 ./*.pem ./*.key
