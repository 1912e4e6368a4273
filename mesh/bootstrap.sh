#!/bin/bash
# mesh-bootstrap - a new mesh node's first boot, run by cloud-init's runcmd
# (meshctl cloud-init writes it to /usr/local/sbin/mesh-bootstrap).
#
#   mesh-bootstrap --api URL (--token T | --token-file F) --pin PIN
#                  [--metadata URL|none] [--external-ip IP] [--root DIR]
#                  [--start CMD] [--log FILE] [--tools-env] [--retry-for S]
#
# Steps, each logged with a timestamp to the log and to stderr; the first
# that fails ends the run with "mesh-bootstrap: step NAME failed: REASON"
# and its own exit code (see usage below and meshctl(8), BOOTSTRAP):
#   tools           curl, python3, wg, bird, nft, unshare, healthd present
#   key             the node's WireGuard key, made here under umask 077 and
#                   kept across runs; only its public half is sent anywhere
#   metadata        the provider's metadata: BGP session values, address
#   enroll          POST the one-time token and the public key; the
#                   credential that comes back is stored 0600. A reply
#                   lost on the way is asked for again with the same key
#                   (meshd answers such a retry within 10 minutes)
#   fetch           GET the node's config with that credential
#   verify          every file's sha256, every path relative, inside ROOT and
#                   below one of the directories meshctl renders into
#   metadata-check  bird.conf's upstream session is the provider's
#   secrets         files the node must already have (the BGP password)
#   validate        bird -p, nft -c (in unshare -n), healthd -t on a staged copy
#   install         each file to a temporary name beside it, then renamed
#   start           systemd units, nft -f, wg; or --start CMD
# A re-run after a failure keeps the key, and once enrolled keeps the
# credential too: the token is not needed again.
#
# Nothing secret is put on a command line or in the log: the token and the
# credential reach curl through files (--data-binary @F, -H @F) in a 0700
# directory, and python3 reads the token on its standard input.
set -euo pipefail
set -E # the ERR trap inside functions too
umask 077
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}

PROG=mesh-bootstrap
STEP=args
declare -A STEP_CODE=([args]=2 [tools]=3 [key]=4 [metadata]=5 [enroll]=6 [fetch]=7
	[verify]=8 [metadata-check]=9 [secrets]=10 [validate]=11 [install]=12 [start]=13)

usage() {
	cat <<'EOF'
usage: mesh-bootstrap --api URL (--token T | --token-file F) --pin PIN
                      [--metadata URL|none] [--external-ip IP] [--root DIR]
                      [--start CMD] [--log FILE] [--tools-env] [--retry-for S]
  --api URL         meshd's base URL: https://HOST[:PORT][/PREFIX]
                    (http:// only to a loopback address)
  --token T         the one-time enrolment token (64 hex characters)
  --token-file F    the token from file F instead (removed once redeemed)
  --pin PIN         meshd's public key: sha256//BASE64 as curl's
                    --pinnedpubkey takes it, or the bare BASE64; several
                    separated by ';'. Checked on every request; the
                    certificate chain and name are not (a self-signed
                    certificate works with its pin alone)
  --metadata URL    the provider's metadata (default
                    http://169.254.169.254/v1.json); "none" skips it and
                    needs --external-ip
  --external-ip IP  the address to enrol with (default: the metadata's
                    interfaces[0].ipv4.address)
  --root DIR        install below DIR instead of / (a lab's node); needs
                    --start. Absolute paths named inside the files (the
                    BGP password, healthd's include) are used as they are
  --start CMD       run CMD ROOT NODE (through sh -c) instead of starting
                    the systemd units; env MESH_ROOT, MESH_NODE,
                    MESH_REGION, MESH_INTERFACE, MESH_KEY_FILE, MESH_API
  --log FILE        default ROOT/var/log/mesh-bootstrap.log
  --tools-env       take the programs from MESHCTL_BIRD, MESHCTL_NFT,
                    MESHCTL_UNSHARE, MESHCTL_HEALTHD and BOOTSTRAP_WG (unset:
                    from PATH; empty: skip that check; wg cannot be skipped)
  --retry-for S     retry unreachable hosts, timeouts and HTTP 408, 429
                    and 5xx for S seconds (default 300); 4xx never
exit status: 0 done; 1 another run holds the lock; 2 args; 3 tools; 4 key;
5 metadata; 6 enroll; 7 fetch; 8 verify; 9 metadata-check; 10 secrets;
11 validate; 12 install; 13 start
EOF
}

# ---- logging and failure ----------------------------------------------

LOG=
log() {
	local ts line
	printf -v ts '%(%Y-%m-%dT%H:%M:%S%z)T' -1
	line="$ts $PROG: $STEP: $*"
	printf '%s\n' "$line" >&2
	[ -z "$LOG" ] || printf '%s\n' "$line" >>"$LOG" 2>/dev/null || true
}

# Each line of FILE into the log, after PREFIX.
log_lines() { # FILE [PREFIX]
	local l
	while IFS= read -r l; do log "${2:-}$l"; done <"$1"
}

# The end of a run: the step that failed (STEP), why, and its exit code.
die() { # REASON...
	local ts line
	printf -v ts '%(%Y-%m-%dT%H:%M:%S%z)T' -1
	line="$ts $PROG: step $STEP failed: $*"
	printf '%s\n' "$line" >&2
	[ -z "$LOG" ] || printf '%s\n' "$line" >>"$LOG" 2>/dev/null || true
	trap - ERR
	exit "${STEP_CODE[$STEP]:-1}"
}

# set -e would end the run silently: name the command instead.
on_err() {
	die "unexpected failure (exit $1) of '$3' at line $2"
}
trap 'on_err "$?" "$LINENO" "$BASH_COMMAND"' ERR

# ---- the JSON helper (python3: every cloud image has it) ---------------

read -r -d '' PY <<'PYEOF' || true
import hashlib, ipaddress, json, os, re, sys

PATH_RE = re.compile(r'[A-Za-z0-9._+@-]+(/[A-Za-z0-9._+@-]+)*')
# where meshctl render puts a node's files (mesh/render.c's table): nothing
# else is ever installed, whatever the reply says
ALLOWED = ('etc/bird/', 'etc/wireguard/', 'etc/systemd/network/', 'etc/nftables.d/', 'etc/healthd/')
NAME_RE = re.compile(r'[A-Za-z0-9_-][A-Za-z0-9._-]{0,62}')
HEX64 = re.compile(r'[0-9a-f]{64}')


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def shown(v, n=80):
    """v for a message: printable, short, no token-like strings."""
    s = v if isinstance(v, str) else json.dumps(v)
    s = HEX64.sub('<redacted>', re.sub(r'[\x00-\x1f\x7f]', '?', s))
    return s if len(s) <= n else s[:n] + '...'


def load(path, what):
    try:
        with open(path, 'rb') as f:
            raw = f.read(16 << 20)
    except OSError as e:
        fail('%s: %s' % (what, e.strerror))
    try:
        d = json.loads(raw.decode('utf-8'))
    except (UnicodeDecodeError, ValueError) as e:
        fail('%s is not JSON: %s' % (what, e))
    if not isinstance(d, dict):
        fail('%s is not a JSON object' % what)
    return d


def error_reason(path):
    try:
        with open(path, 'rb') as f:
            raw = f.read(65536)
    except OSError:
        raw = b''
    try:
        e = json.loads(raw.decode('utf-8')).get('error')
    except (UnicodeDecodeError, ValueError, AttributeError):
        e = None
    if not isinstance(e, str):
        e = raw[:200].decode('utf-8', 'replace').strip()
    print(shown(e, 300) or 'no reason given')


def addr(v, fam):
    try:
        a = ipaddress.ip_address(str(v).strip())
    except ValueError:
        return None
    return str(a) if a.version == (4 if fam == 'ipv4' else 6) else None


def asn(v):
    s = str(v).strip()
    if s.upper().startswith('AS'):
        s = s[2:]
    return int(s) if s.isdigit() and 0 < int(s) < 1 << 32 else None


def metadata_bgp(d):
    """{family: (my_address, my_asn, peer_address, peer_asn)} of the metadata."""
    bgp = d.get('bgp')
    out = {}
    for fam in ('ipv4', 'ipv6'):
        b = bgp.get(fam) if isinstance(bgp, dict) else None
        if not isinstance(b, dict) or not b:
            continue
        peer, pasn = addr(b.get('peer-address'), fam), asn(b.get('peer-asn'))
        if peer is None or pasn is None:
            fail('the metadata\'s bgp.%s has no valid peer-address and peer-asn: %s'
                 % (fam, shown(b, 200)))
        out[fam] = (addr(b.get('my-address'), fam), asn(b.get('my-asn')), peer, pasn)
    return out, isinstance(bgp, dict)


def cmd_metadata(path):
    d = load(path, 'the metadata')
    try:
        a = d['interfaces'][0]['ipv4']['address']
    except (KeyError, IndexError, TypeError):
        a = None
    a = addr(a, 'ipv4') if a is not None else None
    if a:
        print('external_ip=%s' % a)
    bgp, _ = metadata_bgp(d)
    for fam, (my, myasn, peer, pasn) in sorted(bgp.items()):
        print('bgp=%s: my-address %s my-asn %s peer-address %s peer-asn %s'
              % (fam, my or '-', myasn or '-', peer, pasn))


def cmd_enroll_body(public_key, external_ip):
    token = sys.stdin.read().strip()
    print(json.dumps({'token': token, 'public_key': public_key, 'external_ip': external_ip}))


def api_path(v, what):
    if not isinstance(v, str) or not re.fullmatch(r'/api/v1/[A-Za-z0-9._~/-]+', v) or '..' in v:
        fail('%s %s is not a path below /api/v1/' % (what, shown(v)))
    return v


def write_private(path, text):
    tmp = '%s.%d.tmp' % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, text.encode())
        os.fchmod(fd, 0o600)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def cmd_enroll_reply(path, cred_path):
    d = load(path, "meshd's enrolment reply")
    node, region, cred = d.get('node'), d.get('region'), d.get('credential')
    if not isinstance(node, str) or not NAME_RE.fullmatch(node):
        fail('the reply names no valid node: %s' % shown(node))
    if region is not None and (not isinstance(region, str) or not NAME_RE.fullmatch(region)):
        fail('the reply names no valid region: %s' % shown(region))
    if not isinstance(cred, str) or not HEX64.fullmatch(cred):
        fail('the reply carries no credential of 64 hex characters')
    config = api_path(d.get('config'), 'config')
    wireguard = api_path(d.get('wireguard', '/api/v1/nodes/%s/wireguard' % node), 'wireguard')
    # the files fetched are the node's the enrolment named, by node or region
    if config not in ['/api/v1/nodes/%s/config' % n for n in (node, region) if n]:
        fail('the reply enrols node %s but points at config %s' % (node, shown(config)))
    retry = d.get('retry', False)
    if not isinstance(retry, bool):
        fail('the reply\'s "retry" is not true or false: %s' % shown(retry))
    write_private(cred_path, cred + '\n')
    print('node=%s\nregion=%s\nconfig=%s\nwireguard=%s' % (node, region or '', config, wireguard))
    if retry:
        print('retry=1')


def rel_path(p, what):
    """p, a path relative to the node's root that stays inside it."""
    if not isinstance(p, str) or not p:
        fail('%s is missing' % what)
    if p.startswith('/'):
        fail('%s %s is absolute: a path relative to the node\'s root is expected' % (what, shown(p)))
    if len(p) > 255 or not PATH_RE.fullmatch(p):
        fail('%s %s is not a plain relative path (letters, digits, ._+@- and /)' % (what, shown(p)))
    if any(c in ('.', '..') for c in p.split('/')):
        fail('%s %s has a "." or ".." component: it could leave the node\'s root' % (what, shown(p)))
    if not p.startswith(ALLOWED):
        fail('%s %s is not below %s: meshd never sends such a file, it is not installed'
             % (what, shown(p), ', '.join(ALLOWED)))
    return p


def inside(root, p, what):
    """p's directory, followed through any symbolic link, is inside root."""
    real = os.path.realpath(root)
    d = os.path.realpath(os.path.join(real, os.path.dirname(p)))
    if d != real and not d.startswith(real.rstrip('/') + '/'):
        fail('%s %s: its directory resolves to %s, outside the root %s (a symbolic link)'
             % (what, p, d, real))


def node_path(p, what):
    if (not isinstance(p, str) or not p.startswith('/') or len(p) > 255
            or not PATH_RE.fullmatch(p[1:]) or any(c in ('.', '..') for c in p[1:].split('/'))):
        fail('%s %s is not a plain absolute path' % (what, shown(p)))
    return p


def cmd_verify(path, root, stage, node, protected):
    d = load(path, 'the config reply')
    if d.get('node') != node:
        fail('the config is for node %s, this node enrolled as %s' % (shown(d.get('node')), node))
    iface = d.get('interface')
    if not isinstance(iface, str) or not re.fullmatch(r'[A-Za-z0-9_.-]{1,15}', iface) or iface in ('.', '..'):
        fail('interface %s is not an interface name' % shown(iface))
    keyfile = rel_path(d.get('private_key_file'), 'private_key_file')
    inside(root, keyfile, 'private_key_file')
    secrets = d.get('secrets', [])
    if not isinstance(secrets, list):
        fail('secrets is not a list')
    out = []
    for i, s in enumerate(secrets):
        if not isinstance(s, dict):
            fail('secrets[%d] is not an object' % i)
        sp = node_path(s.get('path'), 'secrets[%d].path' % i)
        what = s.get('what', '')
        out.append('secret=%s\t%s' % (sp, shown(what if isinstance(what, str) else '', 120)))
    files = d.get('files')
    if not isinstance(files, list) or not files:
        fail('the reply has no files')
    seen, staged = set(), []
    for i, f in enumerate(files):
        if not isinstance(f, dict):
            fail('files[%d] is not an object' % i)
        p = rel_path(f.get('path'), 'files[%d].path' % i)
        if p in seen:
            fail('%s is listed twice' % p)
        seen.add(p)
        if p == keyfile or p in protected:
            fail('%s is the node\'s own (its private key, credential or state): not replaced' % p)
        inside(root, p, 'files[%d].path' % i)
        mode = f.get('mode')
        if not isinstance(mode, str) or not re.fullmatch(r'0?[0-7]{3}', mode):
            fail('%s: mode %s is not an octal mode such as "0644"' % (p, shown(mode)))
        if int(mode, 8) & 0o002:
            fail('%s: mode %s is writable by everyone' % (p, mode))
        check = f.get('check')
        if check not in (None, 'bird', 'nft', 'healthd'):
            fail('%s: unknown check %s' % (p, shown(check)))
        content, want = f.get('content'), f.get('sha256')
        if not isinstance(content, str):
            fail('%s: no content' % p)
        if not isinstance(want, str) or not HEX64.fullmatch(want.lower()):
            fail('%s: sha256 %s is not 64 hex characters' % (p, shown(want)))
        data = content.encode('utf-8')
        got = hashlib.sha256(data).hexdigest()
        if got != want.lower():
            fail('%s: the sha256 of its content is %s, the reply says %s' % (p, got, want.lower()))
        staged.append((p, int(mode, 8), check or '-', data))
    for p, mode, check, data in staged:
        dst = os.path.join(stage, 'files', p)
        os.makedirs(os.path.dirname(dst), mode=0o700, exist_ok=True)
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'wb') as w:
            w.write(data)
    with open(os.path.join(stage, 'manifest'), 'w') as m:
        for p, mode, check, _ in staged:
            m.write('%04o %s %s\n' % (mode, check, p))
    inv = d.get('inventory')
    inv = inv if isinstance(inv, str) and re.fullmatch(r'sha256:[0-9a-f]{64}', inv) else '-'
    print('interface=%s\nkey_file=%s\ninventory=%s\nfiles=%d' % (iface, keyfile, inv, len(staged)))
    for line in out:
        print(line)


INCLUDE_RE = re.compile(r'^(\s*)include "([^"]+)";(.*)$')


def includes(text, base):
    """(line number, as written, resolved) of each include."""
    for n, line in enumerate(text.split('\n')):
        m = INCLUDE_RE.match(line)
        if m:
            p = m.group(2)
            yield n, p, p if p.startswith('/') else os.path.join(base, p)


def cmd_bird_stubs(conf, out, stubs, base):
    """conf as BIRD would read it once installed, an include that does not
    exist yet (healthd's file) pointing at an empty stand-in."""
    with open(conf) as f:
        lines = f.read().split('\n')
    k = 0
    for n, written, real in list(includes('\n'.join(lines), base)):
        if os.path.exists(real):
            lines[n] = INCLUDE_RE.sub(lambda m: '%sinclude "%s";%s' % (m.group(1), real, m.group(3)), lines[n])
            continue
        stub = os.path.join(stubs, 'include%d' % k)
        k += 1
        open(stub, 'w').close()
        lines[n] = 'include "%s";\t# stand-in for %s' % (stub, real)
        print(real)
    with open(out, 'w') as f:
        f.write('\n'.join(lines))


def cmd_bird_missing(conf, base):
    with open(conf) as f:
        text = f.read()
    for _, _, real in includes(text, base):
        if not os.path.exists(real):
            print(real)


def bird_upstreams(text):
    """MESH_ASN, and {family: (protocol, neighbour, AS)} of the eBGP sessions."""
    m = re.search(r'^define MESH_ASN = (\d+);', text, re.M)
    local = int(m.group(1)) if m else None
    ups = {}
    for pm in re.finditer(r'^protocol bgp (\S+) \{\n(.*?)^\}', text, re.M | re.S):
        name, body = pm.group(1), pm.group(2)
        nm = re.search(r'^\s*neighbor (\S+) as (\S+);', body, re.M)
        if not nm or not nm.group(2).isdigit() or int(nm.group(2)) == local:
            continue          # iBGP: neighbor ... as MESH_ASN
        fam = 'ipv6' if re.search(r'^\s*ipv6 \{', body, re.M) else 'ipv4'
        ups.setdefault(fam, (name, addr(nm.group(1), fam) or nm.group(1), int(nm.group(2))))
    return local, ups


def cmd_metadata_check(conf, metadata):
    with open(conf) as f:
        local, ups = bird_upstreams(f.read())
    bgp, has_bgp = metadata_bgp(load(metadata, 'the metadata'))
    if not ups:
        print('bird.conf has no upstream session: nothing to compare')
        return
    if not has_bgp or 'ipv4' in ups and 'ipv4' not in bgp:
        name, a, n = ups.get('ipv4') or next(iter(ups.values()))
        fail('the metadata has no bgp.ipv4 (is BGP enabled for this instance?); bird.conf\'s %s '
             'expects neighbour %s AS %d' % (name, a, n))
    for fam in sorted(ups):
        name, a, n = ups[fam]
        if fam not in bgp:
            print('warning: the metadata has no bgp.%s: %s (neighbour %s AS %d) will not come up'
                  % (fam, name, a, n))
            continue
        my, myasn, peer, pasn = bgp[fam]
        if (a, n) != (peer, pasn):
            fail('bird.conf\'s %s is neighbour %s AS %d, the metadata\'s bgp.%s says '
                 'peer-address %s peer-asn %d' % (name, a, n, fam, peer, pasn))
        if myasn is not None and local is not None and myasn != local:
            fail('the metadata\'s bgp.%s my-asn is %d, the mesh\'s AS in bird.conf (MESH_ASN) is %d'
                 % (fam, myasn, local))
        print('%s: neighbour %s AS %d as the metadata says' % (name, a, n))


def cmd_install(root, stage):
    """Every staged file to a temporary name beside its target first, then
    each renamed over it: a failure before the renames changes nothing."""
    os.umask(0o022)
    real = os.path.realpath(root)
    todo = []
    try:
        with open(os.path.join(stage, 'manifest')) as m:
            for line in m:
                mode, _, p = line.rstrip('\n').split(' ', 2)
                inside(root, p, p)
                dst = os.path.join(real, p)
                d = os.path.dirname(dst)
                os.makedirs(d, mode=0o755, exist_ok=True)
                tmp = os.path.join(d, '.%s.mesh-bootstrap.%d' % (os.path.basename(p), os.getpid()))
                with open(os.path.join(stage, 'files', p), 'rb') as src:
                    data = src.read()
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                todo.append((tmp, dst, p))
                try:
                    os.write(fd, data)
                    os.fchmod(fd, int(mode, 8))
                    os.fsync(fd)
                finally:
                    os.close(fd)
    except OSError as e:
        for tmp, _, _ in todo:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        fail('%s: %s; nothing was replaced' % (e.filename or '?', e.strerror))
    for tmp, dst, p in todo:
        os.replace(tmp, dst)
        fd = os.open(os.path.dirname(dst), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        print(p)


CMDS = {
    'error': (error_reason, 1), 'metadata': (cmd_metadata, 1),
    'enroll-body': (cmd_enroll_body, 2), 'enroll-reply': (cmd_enroll_reply, 2),
    'verify': (lambda c, r, s, n, *p: cmd_verify(c, r, s, n, set(p)), None),
    'bird-stubs': (cmd_bird_stubs, 4), 'bird-missing': (cmd_bird_missing, 2),
    'metadata-check': (cmd_metadata_check, 2), 'install': (cmd_install, 2),
}
fn, nargs = CMDS[sys.argv[1]]
if nargs is not None and len(sys.argv) != nargs + 2:
    fail('internal: %s takes %d arguments' % (sys.argv[1], nargs))
fn(*sys.argv[2:])
PYEOF

py() { python3 -c "$PY" "$@"; }

# ---- options ------------------------------------------------------------

API='' TOKEN='' TOKEN_FILE='' PIN='' METADATA=http://169.254.169.254/v1.json ROOT=/
EXTERNAL_IP='' START_CMD='' TOOLS_ENV='' RETRY_FOR=300 LOG_OPT=''

need_arg() { [ $# -ge 2 ] || die "$1 needs a value (--help)"; }

while [ $# -gt 0 ]; do
	opt=$1
	case $opt in
	--*=*) set -- "${opt%%=*}" "${opt#*=}" "${@:2}"; continue ;;
	esac
	case $opt in
	--api) need_arg "$@"; API=$2; shift ;;
	--token) need_arg "$@"; TOKEN=$2; shift ;;
	--token-file) need_arg "$@"; TOKEN_FILE=$2; shift ;;
	--pin) need_arg "$@"; PIN=$2; shift ;;
	--metadata) need_arg "$@"; METADATA=$2; shift ;;
	--root) need_arg "$@"; ROOT=$2; shift ;;
	--external-ip) need_arg "$@"; EXTERNAL_IP=$2; shift ;;
	--start) need_arg "$@"; START_CMD=$2; shift ;;
	--log) need_arg "$@"; LOG_OPT=$2; shift ;;
	--retry-for) need_arg "$@"; RETRY_FOR=$2; shift ;;
	--tools-env) TOOLS_ENV=1 ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown option '$opt' (--help)" ;;
	esac
	shift
done

valid_ipv4() {
	local IFS=. a
	[[ $1 =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || return 1
	# shellcheck disable=SC2086 # split on the dots
	for a in $1; do [ "$((10#$a))" -le 255 ] || return 1; done
}

# The pins as curl takes them: sha256//B64[;sha256//B64...].
normalise_pin() {
	local p out='' IFS=';'
	for p in $1; do
		p=${p#sha256//}
		[[ $p =~ ^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$ ]] ||
			die "--pin: '${p:0:60}' is not the base64 of a sha256 (44 characters ending in '='), as in sha256//BASE64"
		out+=${out:+;}sha256//$p
	done
	[ -n "$out" ] || die "--pin is empty"
	REPLY=$out
}

[ -n "$API" ] || die "--api URL is required"
API=${API%/}
API_HOST=
if [[ $API =~ ^https://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$ ]]; then
	API_HOST=${BASH_REMATCH[1]}
	[ -n "$PIN" ] || die "--pin is required: meshd's key is checked against it on every request"
	normalise_pin "$PIN"
	PIN=$REPLY
	# --insecure: the chain and the name are not checked, the pin is. With
	# curl 7.88.1 and OpenSSL 3.0 (Debian 12), against a self-signed
	# certificate: a wrong pin with --insecure fails with exit 90 ("public
	# key does not match pinned public key") before a byte of the request
	# is sent; the right pin with --insecure succeeds; the right pin without
	# it fails with exit 60 (self-signed). A bare BASE64 would be taken by
	# curl for a file name: it always gets the sha256// form.
	TLS=(--proto "=https" --pinnedpubkey "$PIN" --insecure)
elif [[ $API =~ ^http://(127\.[0-9.]+|localhost|\[::1\])(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$ ]]; then
	API_HOST=${BASH_REMATCH[1]}
	TLS=(--proto "=http")
else
	die "--api '$API' is not https://HOST[:PORT][/PREFIX] (plain http:// only to a loopback address)"
fi
[[ $API_HOST != *..* ]] || die "--api '$API': bad host name"
if [ -n "$TOKEN" ] && [ -n "$TOKEN_FILE" ]; then die "--token and --token-file: give one"; fi
if [ -n "$TOKEN" ] && ! [[ $TOKEN =~ ^[0-9a-f]{64}$ ]]; then
	die "--token is not 64 lowercase hex characters (meshctl token create prints it)"
fi
case $METADATA in
none) [ -n "$EXTERNAL_IP" ] || die "--metadata none needs --external-ip (the address to enrol with)" ;;
http://* | https://*) [[ $METADATA =~ ^https?://[][A-Za-z0-9._~:/?=\&%+-]+$ ]] || die "--metadata '$METADATA' is not a plain URL" ;;
*) die "--metadata '$METADATA' is neither a http(s) URL nor 'none'" ;;
esac
if [ -n "$EXTERNAL_IP" ] && ! valid_ipv4 "$EXTERNAL_IP"; then die "--external-ip '$EXTERNAL_IP' is not an IPv4 address"; fi
[[ $RETRY_FOR =~ ^[0-9]{1,4}$ ]] || die "--retry-for '$RETRY_FOR' is not a number of seconds (0-9999)"
case $ROOT in /*) ;; *) die "--root '$ROOT' is not an absolute path" ;; esac
[ -d "$ROOT" ] || die "--root $ROOT is not a directory"
ROOT=$(cd "$ROOT" && pwd -P)
if [ "$ROOT" != / ] && [ -z "$START_CMD" ]; then
	die "--root $ROOT needs --start CMD: the systemd units would start this machine's own files"
fi
R=${ROOT%/}                   # "" for /: $R/etc/... is always right

STATE_DIR=$R/var/lib/mesh-bootstrap
STATE=$STATE_DIR/state
CRED=$R/etc/healthd/mesh.credential
STAGE_KEY=$R/etc/wireguard/mesh-bootstrap.key
# Directories others read (healthd reads etc/healthd) are made 0755.
mkdirs() { (umask 022 && mkdir -p "$@"); }
mkdirs "$STATE_DIR" "$R/etc/healthd" "$R/var/log"
chmod 0700 "$STATE_DIR"
LOG=${LOG_OPT:-$R/var/log/mesh-bootstrap.log}
: >>"$LOG" || { LOG=; die "cannot write the log $LOG_OPT"; }

STEP=tools
for c in curl python3 flock; do
	command -v "$c" >/dev/null || die "$c not found: install it (packages curl, python3, util-linux)"
done
# One run at a time (cloud-init's and an operator's); a run killed before
# its EXIT trap left its work directory (a copy of the credential in it).
exec 9>"$STATE_DIR/lock"
if ! flock -n 9; then
	log "another mesh-bootstrap holds $STATE_DIR/lock"
	exit 1
fi
rm -rf "$STATE_DIR"/run.*
WORK=$(mktemp -d "$STATE_DIR/run.XXXXXX")
trap 'rm -rf "$WORK" "$STAGE_KEY.tmp"' EXIT
log "mesh-bootstrap for $API, root $ROOT, log $LOG"

# ---- state kept across runs (no secret in it) ---------------------------

declare -A ST=()
if [ -f "$STATE" ]; then
	while IFS= read -r l; do
		k=${l%%=*} v=${l#*=}
		[ -z "$k" ] || ST[$k]=$v
	done <"$STATE"
fi
state_save() {
	local k
	for k in "${!ST[@]}"; do printf '%s=%s\n' "$k" "${ST[$k]}"; done | sort >"$STATE.tmp"
	mv -f "$STATE.tmp" "$STATE"
}

# ---- tools ----------------------------------------------------------------

# tool VAR PROGRAM - REPLY: the program's path, or "" when VAR (honoured
# with --tools-env only) is set empty: that check is skipped.
tool() {
	local var=$1 prog=$2
	if [ -n "$TOOLS_ENV" ] && [ -n "${!var+set}" ]; then
		prog=${!var}
		if [ -z "$prog" ]; then
			REPLY=
			return 0
		fi
	fi
	REPLY=$(command -v "$prog") ||
		die "$prog not found${TOOLS_ENV:+ (from $var)}: install it (packages bird2, nftables, wireguard-tools, healthd, curl, python3)"
}
tool BOOTSTRAP_WG wg
WG=$REPLY
[ -n "$WG" ] || die "BOOTSTRAP_WG is empty: wg makes the node's key, it cannot be skipped"
tool MESHCTL_BIRD bird
BIRD=$REPLY
tool MESHCTL_NFT nft
NFT=$REPLY
UNSHARE=
[ -z "$NFT" ] || { tool MESHCTL_UNSHARE unshare; UNSHARE=$REPLY; }
tool MESHCTL_HEALTHD healthd
HEALTHD=$REPLY
log "wg $WG, bird ${BIRD:-(skipped)}, nft ${NFT:-(skipped)}, healthd ${HEALTHD:-(skipped)}"

# ---- HTTP -----------------------------------------------------------------

# http NAME OUT CURL_ARGS... - one request; connection errors, timeouts and
# HTTP 408, 429 and 5xx are tried again with a doubling delay for
# --retry-for seconds, any other answer is final. Sets CURL_RC (0 = 2xx),
# HTTP_CODE and CURL_ERR (curl's own words).
http() {
	local what=$1 out=$2 delay=1 attempt=0 end=$((SECONDS + RETRY_FOR))
	shift 2
	while :; do
		attempt=$((attempt + 1))
		CURL_RC=0
		HTTP_CODE=$(curl --silent --show-error --fail-with-body --connect-timeout 10 --max-time 60 \
			--max-filesize 16777216 --output "$out" --write-out '%{http_code}' "$@" 2>"$WORK/curl.err") ||
			CURL_RC=$?
		CURL_ERR=$(tr -s '\n' ' ' <"$WORK/curl.err" | sed 's/[0-9a-f]\{64\}/<redacted>/g; s/ *$//')
		case $CURL_RC in
		0) return 0 ;;
		5 | 6 | 7 | 28 | 35 | 52 | 55 | 56) ;;
		22) case $HTTP_CODE in 408 | 429 | 5??) ;; *) return 0 ;; esac ;;
		*) return 0 ;;
		esac
		if [ $((SECONDS + delay)) -gt "$end" ]; then
			[ "$attempt" -eq 1 ] || CURL_ERR="$CURL_ERR (after $attempt attempts in ${RETRY_FOR}s)"
			return 0
		fi
		log "$what, attempt $attempt: ${CURL_ERR:-HTTP $HTTP_CODE}; again in ${delay}s"
		sleep "$delay"
		delay=$((delay * 2 > 30 ? 30 : delay * 2))
	done
}

# Why a request to meshd failed, in words (after http).
api_failure() {
	case $CURL_RC in
	22) printf 'meshd answered HTTP %s: %s' "$HTTP_CODE" "$(py error "$1")" ;;
	90) printf "meshd's public key is not the one pinned (--pin %s): refused before anything was sent (%s)" "$PIN" "$CURL_ERR" ;;
	*) printf 'cannot reach %s: %s' "$API" "${CURL_ERR:-curl exit $CURL_RC}" ;;
	esac
}

# ---- key ------------------------------------------------------------------

STEP=key
KEY=
if [ -n "${ST[key_file]:-}" ] && [ -s "$R/${ST[key_file]}" ]; then
	KEY=$R/${ST[key_file]}
	log "keeping the node's key $KEY"
elif [ -s "$STAGE_KEY" ]; then
	KEY=$STAGE_KEY
	log "keeping the key an earlier run made, $KEY"
else
	mkdirs "$R/etc"
	mkdir -p "$R/etc/wireguard"
	"$WG" genkey >"$STAGE_KEY.tmp" 2>"$WORK/wg.err" || die "wg genkey: $(cat "$WORK/wg.err")"
	mv -f "$STAGE_KEY.tmp" "$STAGE_KEY"
	KEY=$STAGE_KEY
	log "made the node's key $KEY (umask 077; it never leaves this machine)"
fi
PUBKEY=$("$WG" pubkey <"$KEY" 2>"$WORK/wg.err") || die "wg pubkey: $(cat "$WORK/wg.err")"
[[ $PUBKEY =~ ^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$ ]] || die "wg pubkey printed no key"
log "public key $PUBKEY"

# ---- metadata -------------------------------------------------------------

STEP=metadata
MD=
if [ "$METADATA" = none ]; then
	log "skipped (--metadata none); enrolling with $EXTERNAL_IP"
else
	http metadata "$WORK/metadata.json" --noproxy '*' --proto =http,https "$METADATA"
	[ "$CURL_RC" -eq 0 ] || die "cannot read $METADATA: ${CURL_ERR:-HTTP $HTTP_CODE} (--metadata none --external-ip IP skips it)"
	py metadata "$WORK/metadata.json" >"$WORK/metadata.out" 2>"$WORK/py.err" ||
		die "$METADATA: $(cat "$WORK/py.err")"
	MD=$WORK/metadata.json
	while IFS= read -r l; do
		k=${l%%=*} v=${l#*=}
		case $k in
		external_ip) [ -n "$EXTERNAL_IP" ] || EXTERNAL_IP=$v ;;
		bgp) log "$v" ;;
		esac
	done <"$WORK/metadata.out"
	[ -n "$EXTERNAL_IP" ] || die "$METADATA has no interfaces[0].ipv4.address: give --external-ip"
	log "read $METADATA; external address $EXTERNAL_IP"
fi

# ---- enroll ---------------------------------------------------------------

STEP=enroll
if [ -s "$CRED" ] && [ -n "${ST[node]:-}" ] && [ "${ST[public_key]:-}" = "$PUBKEY" ] &&
	[ "${ST[api]:-}" = "$API" ]; then
	log "already enrolled as ${ST[node]} with this key (credential $CRED): the token is not needed"
else
	if [ -n "$TOKEN_FILE" ]; then
		[ -r "$TOKEN_FILE" ] || die "cannot read the token file $TOKEN_FILE"
		IFS= read -r TOKEN <"$TOKEN_FILE" || true
		[[ $TOKEN =~ ^[0-9a-f]{64}$ ]] || die "$TOKEN_FILE does not hold a token of 64 lowercase hex characters"
	fi
	[ -n "$TOKEN" ] || die "not enrolled yet and no token: give --token-file F or --token T"
	printf '%s' "$TOKEN" | py enroll-body "$PUBKEY" "$EXTERNAL_IP" >"$WORK/enroll.json"
	TOKEN=
	log "POST $API/api/v1/nodes/enroll (public key $PUBKEY, external_ip $EXTERNAL_IP)"
	http enroll "$WORK/enroll.reply" "${TLS[@]}" -X POST -H 'Content-Type: application/json' \
		--data-binary @"$WORK/enroll.json" "$API/api/v1/nodes/enroll"
	rm -f "$WORK/enroll.json"
	if [ "$CURL_RC" -ne 0 ]; then
		why=$(api_failure "$WORK/enroll.reply")
		case $HTTP_CODE:$why in
		403:*"already redeemed"*)
			why="$why; if an earlier attempt's reply was lost, meshd takes this key again only within 10 minutes of the redemption: ask for a new token (meshctl token create --replace)" ;;
		esac
		die "$why"
	fi
	py enroll-reply "$WORK/enroll.reply" "$CRED" >"$WORK/enroll.out" 2>"$WORK/py.err" ||
		die "$(cat "$WORK/py.err")"
	rm -f "$WORK/enroll.reply"
	retry=
	while IFS= read -r l; do
		k=${l%%=*} v=${l#*=}
		case $k in
		retry) retry=1 ;;
		*) ST[$k]=$v ;;
		esac
	done <"$WORK/enroll.out"
	ST[public_key]=$PUBKEY
	ST[api]=$API
	state_save
	if [ -n "$retry" ]; then
		log "enrolled (retry) as ${ST[node]} (region ${ST[region]:-?}): meshd had the enrolment, its reply was lost; a new credential stored in $CRED (0600)"
	else
		log "enrolled as ${ST[node]} (region ${ST[region]:-?}); credential stored in $CRED (0600)"
	fi
	if [ -n "$TOKEN_FILE" ]; then
		rm -f "$TOKEN_FILE"
		log "the token is redeemed: removed $TOKEN_FILE"
	fi
fi
NODE=${ST[node]}

# ---- fetch ----------------------------------------------------------------

STEP=fetch
IFS= read -r cred <"$CRED" || true
[[ $cred =~ ^[0-9a-f]{64}$ ]] || die "$CRED does not hold a credential: remove it and enrol with a new token"
printf 'Authorization: Bearer %s\n' "$cred" >"$WORK/auth"
cred=
log "GET $API${ST[config]}"
http fetch "$WORK/config.json" "${TLS[@]}" -H @"$WORK/auth" "$API${ST[config]}"
if [ "$CURL_RC" -ne 0 ]; then
	why=$(api_failure "$WORK/config.json")
	case $HTTP_CODE in
	401 | 403) why="$why; if the node was disabled or enrolled again, remove $CRED and enrol with a new token" ;;
	esac
	die "$why"
fi
log "got the config of $NODE"

# ---- verify ---------------------------------------------------------------

STEP=verify
STAGE=$WORK/stage
mkdir -p "$STAGE"
py verify "$WORK/config.json" "$ROOT" "$STAGE" "$NODE" \
	etc/healthd/mesh.credential etc/healthd/mesh.token "${STAGE_KEY#"$R"/}" \
	>"$WORK/verify.out" 2>"$WORK/py.err" || die "$(cat "$WORK/py.err"); nothing installed"
SECRETS=()
while IFS= read -r l; do
	k=${l%%=*} v=${l#*=}
	case $k in
	interface) IFACE=$v ;;
	key_file) KEY_FILE=$v ;;
	inventory) INVENTORY=$v ;;
	files) NFILES=$v ;;
	secret) SECRETS+=("$v") ;;
	esac
done <"$WORK/verify.out"
declare -A CHECKED=()         # check -> the first file it applies to
while read -r _ check path; do
	[ "$check" = - ] || [ -n "${CHECKED[$check]:-}" ] || CHECKED[$check]=$path
done <"$STAGE/manifest"
log "$NFILES files, each its sha256, every path inside $ROOT (inventory $INVENTORY, interface $IFACE)"

# ---- metadata-check ---------------------------------------------------------

STEP=metadata-check
if [ -z "$MD" ]; then
	log "skipped: no metadata was read"
elif [ -z "${CHECKED[bird]:-}" ]; then
	die "the config has no file checked by bird (bird.conf) to compare with the metadata"
else
	py metadata-check "$STAGE/files/${CHECKED[bird]}" "$MD" >"$WORK/mdcheck.out" 2>"$WORK/py.err" ||
		die "$(cat "$WORK/py.err")"
	log_lines "$WORK/mdcheck.out"
fi

# ---- secrets --------------------------------------------------------------

STEP=secrets
missing=()
for s in "${SECRETS[@]}"; do
	p=${s%%$'\t'*} what=${s#*$'\t'}
	if [ -s "$p" ]; then
		log "$p ($what) is there"
	else
		missing+=("$p${what:+ ($what)}")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	die "missing on this node: $(printf '%s, ' "${missing[@]}" | sed 's/, $//'). Put each there yourself" \
		"(the BGP password never travels in user-data; a password file holds 'password \"...\";'," \
		"mode 0640, group bird), then run mesh-bootstrap again with the same options: the key and" \
		"the enrolment are kept"
fi
[ ${#SECRETS[@]} -gt 0 ] || log "the config names no secret"

# ---- validate -------------------------------------------------------------

STEP=validate
# validate_one WHAT OUTFILE CMD... - CMD must exit 0; its words otherwise,
# with the staged copies named by the files' own paths.
validate_one() {
	local what=$1 out=$2 rc=0
	shift 2
	"$@" 2>&1 | sed -e "s|$WORK/bird.check.conf|$path|g" -e "s|$STAGE/files/||g" >"$out" || rc=$?
	if [ "$rc" -ne 0 ]; then
		log_lines "$out" "  "
		die "$what refused it (exit $rc): $(head -c 600 "$out" | tr -s '\n' ' '); nothing installed"
	fi
	log "$what: ok"
}
while read -r _ check path; do
	f=$STAGE/files/$path
	case $check in
	bird)
		if [ -z "$BIRD" ]; then log "$path: bird -p skipped (MESHCTL_BIRD is empty)"; continue; fi
		mkdir -p "$WORK/stubs"
		py bird-stubs "$f" "$WORK/bird.check.conf" "$WORK/stubs" "$R/$(dirname "$path")" >"$WORK/stubs.out"
		while IFS= read -r s; do log "$path: an empty stand-in for $s (it does not exist yet)"; done <"$WORK/stubs.out"
		validate_one "$path: bird -p" "$WORK/bird.out" "$BIRD" -p -c "$WORK/bird.check.conf"
		;;
	nft)
		if [ -z "$NFT" ]; then log "$path: nft -c skipped (MESHCTL_NFT is empty)"; continue; fi
		validate_one "$path: nft -c (in unshare -n)" "$WORK/nft.out" "$UNSHARE" -n "$NFT" -c -f "$f"
		;;
	healthd)
		if [ -z "$HEALTHD" ]; then log "$path: healthd -t skipped (MESHCTL_HEALTHD is empty)"; continue; fi
		validate_one "$path: healthd -t" "$WORK/healthd.out" "$HEALTHD" -t -c "$f"
		;;
	esac
done <"$STAGE/manifest"

# ---- install --------------------------------------------------------------

STEP=install
py install "$ROOT" "$STAGE" >"$WORK/install.out" 2>"$WORK/py.err" || die "$(cat "$WORK/py.err")"
while IFS= read -r p; do log "installed $R/$p"; done <"$WORK/install.out"
# The key under the name the config gives it.
if [ "$KEY" != "$R/$KEY_FILE" ]; then
	if [ -e "$R/$KEY_FILE" ] && ! cmp -s "$KEY" "$R/$KEY_FILE"; then
		die "$R/$KEY_FILE exists and is not the key this node enrolled with ($PUBKEY): not replaced; move it away and run again"
	fi
	mkdirs "$(dirname "$(dirname "$R/$KEY_FILE")")"
	mkdir -p "$(dirname "$R/$KEY_FILE")"
	mv -f "$KEY" "$R/$KEY_FILE"
	KEY=$R/$KEY_FILE
	log "the node's key is now $KEY"
fi
ST[key_file]=$KEY_FILE
state_save
# BIRD refuses a config whose include is missing: healthd's file, empty,
# until healthd writes it.
if [ -n "${CHECKED[bird]:-}" ]; then
	py bird-missing "$R/${CHECKED[bird]}" "$R/$(dirname "${CHECKED[bird]}")" >"$WORK/missing.out"
	while IFS= read -r p; do
		(umask 022 && mkdir -p "$(dirname "$p")" && : >"$p")
		log "made an empty $p for bird.conf's include (healthd fills it)"
	done <"$WORK/missing.out"
fi

# ---- start ----------------------------------------------------------------

STEP=start
# REPLY: the installed file of the reply that CHECK checks (nft), or whose
# path is PATH.
file_of() { # CHECK|PATH
	local c p
	while read -r _ c p; do
		if [ "$c" = "$1" ] || [ "$p" = "$1" ]; then
			REPLY=$R/$p
			return 0
		fi
	done <"$STAGE/manifest"
	return 1
}

default_start() {
	local conf
	if [ -n "$NFT" ] && file_of nft; then
		"$NFT" -f "$REPLY" >"$WORK/start.out" 2>&1 || die "nft -f $REPLY: $(tr -s '\n' ' ' <"$WORK/start.out")"
		log "nft -f $REPLY"
		# and at every boot: Debian's nftables.service reads /etc/nftables.conf
		if [ -f /etc/nftables.conf ] && ! grep -qF 'include "/etc/nftables.d/*.nft"' /etc/nftables.conf; then
			printf '\n# the mesh firewall (mesh-bootstrap)\ninclude "/etc/nftables.d/*.nft"\n' >>/etc/nftables.conf
			log "/etc/nftables.conf includes /etc/nftables.d/*.nft"
		fi
		systemctl enable nftables >/dev/null 2>&1 || log "warning: systemctl enable nftables failed"
	fi
	# systemd-networkd reads PrivateKeyFile= as user systemd-network
	# (systemd.netdev(5)): the key root:systemd-network 0640, and its
	# directory (wireguard-tools makes it 0700) passable for that group
	if getent group systemd-network >/dev/null; then
		chgrp systemd-network "$KEY" "$(dirname "$KEY")"
		chmod 0640 "$KEY"
		chmod 0750 "$(dirname "$KEY")"
	fi
	systemctl enable --now systemd-networkd >"$WORK/start.out" 2>&1 ||
		die "systemctl enable --now systemd-networkd: $(tr -s '\n' ' ' <"$WORK/start.out")"
	networkctl reload >/dev/null 2>&1 || systemctl restart systemd-networkd
	local i
	for ((i = 0; i < 100; i++)); do
		[ -e "/sys/class/net/$IFACE" ] && break
		sleep 0.1
	done
	[ -e "/sys/class/net/$IFACE" ] || die "systemd-networkd made no $IFACE in 10 s (networkctl status $IFACE)"
	if file_of "etc/wireguard/$IFACE.conf"; then
		conf=$REPLY
		# the key joins the file in a pipe: wg syncconf clears a key its file leaves out
		awk 'NR == FNR { k = $0; next } { print } /^\[Interface\]/ { print "PrivateKey = " k }' \
			"$KEY" "$conf" | "$WG" syncconf "$IFACE" /dev/stdin 2>"$WORK/start.out" ||
			die "wg syncconf $IFACE $conf: $(tr -s '\n' ' ' <"$WORK/start.out")"
		log "wg syncconf $IFACE $conf"
	fi
	systemctl enable bird healthd >"$WORK/start.out" 2>&1 ||
		die "systemctl enable bird healthd: $(tr -s '\n' ' ' <"$WORK/start.out")"
	systemctl restart bird >"$WORK/start.out" 2>&1 || die "systemctl restart bird: $(tr -s '\n' ' ' <"$WORK/start.out")"
	systemctl restart healthd >"$WORK/start.out" 2>&1 || die "systemctl restart healthd: $(tr -s '\n' ' ' <"$WORK/start.out")"
	log "systemd-networkd, bird and healthd enabled and started"
}

if [ -n "$START_CMD" ]; then
	log "running --start: $START_CMD $ROOT $NODE"
	rc=0
	(umask 022 && MESH_ROOT=$ROOT MESH_NODE=$NODE MESH_REGION=${ST[region]:-} MESH_INTERFACE=$IFACE \
		MESH_KEY_FILE=$KEY MESH_API=$API \
		exec sh -c "$START_CMD"' "$@"' mesh-bootstrap-start "$ROOT" "$NODE") </dev/null >>"$LOG" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || die "--start '$START_CMD' exited $rc (its output is in $LOG)"
else
	default_start
fi
STEP="done"
log "$NODE is enrolled, its $NFILES files installed and started"
