#!/bin/sh
# slapd.sh runs a lab OpenLDAP directory for the hook6 LDAP examples: the
# hook6 schema, the hook6.ldif fixture, an mdb database in a temporary
# directory, listening on ldap://127.0.0.1:3389 in the foreground (Ctrl-C
# stops it and removes the directory).
#
# Needs the Debian packages slapd and ldap-utils. Usage:
#   examples/ldap/slapd.sh [port]
# Then, e.g.:
#   ldapsearch -x -H ldap://127.0.0.1:3389 -D cn=hook6,ou=services,dc=example,dc=org \
#     -y examples/ldap/bind.password -b ou=dhcp,dc=example,dc=org '(hook6ClientDUID=*)'
#   ldapmodify -x -H ldap://127.0.0.1:3389 -D cn=admin,dc=example,dc=org -w admin-secret <<EOT
#   dn: cn=cpe-1,ou=dhcp,dc=example,dc=org
#   changetype: modify
#   replace: hook6DelegatedPrefix
#   hook6DelegatedPrefix: 2001:db8:8000:4200::/56
#   EOT
set -eu
port=${1:-3389}
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/hook6-slapd.XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/db"
cat >"$dir/slapd.conf" <<EOC
include /etc/ldap/schema/core.schema
include $here/hook6.schema
pidfile $dir/slapd.pid
argsfile $dir/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 1073741824
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw admin-secret
directory $dir/db
index objectClass eq
index hook6ClientDUID eq
index hook6RemoteID eq
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none
EOC
PATH=$PATH:/usr/sbin
slapadd -q -f "$dir/slapd.conf" -l "$here/hook6.ldif"
echo "slapd: ldap://127.0.0.1:$port (data in $dir)"
slapd -f "$dir/slapd.conf" -h "ldap://127.0.0.1:$port/" -d 0
