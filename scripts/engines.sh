#!/usr/bin/env bash
# Run a real single-node Apache Kafka (KRaft) and OpenSearch 2.19 + k-NN as local processes,
# from official artifacts on Maven Central (no Docker needed). See docs/engines.md.
#
#   scripts/engines.sh install            download + assemble into the cache (idempotent)
#   scripts/engines.sh start  [engine]    install if needed, start, wait until healthy
#   scripts/engines.sh stop   [engine]    graceful stop (SIGTERM, then SIGKILL after a timeout)
#   scripts/engines.sh status [engine]    exit 0 only if the engine(s) are healthy
#   scripts/engines.sh reset  [engine]    stop and delete the data dir (the cache is kept)
#   scripts/engines.sh env [principal]    print the client settings (eval-able): KAFKA_BOOTSTRAP=...,
#                                         OPENSEARCH_URL=... (+ TLS/SASL/auth settings when secured)
#   scripts/engines.sh grant <role> <principal>   secured instance only: create a SCRAM user and its
#       ACLs; role: worker (all imgsearch topics/groups), publisher (write images.new, interactions),
#       search-client (write search.requests; own reply topics <prefix>.search.replies.<principal>.*)
#   scripts/engines.sh kafka-tool <class> [args]   run a Kafka CLI class on the broker's classpath, e.g.
#       org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:9092 --list
#   engine: kafka | opensearch (default: both)
#
# Cluster mode (ENGINES_MODE=cluster, or --cluster anywhere on the line): 3 KRaft brokers (combined
# broker+controller), 2 OpenSearch nodes; the same verbs plus `kill <node>` (SIGKILL, for fault drills);
# nodes: kafka | opensearch | kafka-1..3 | opensearch-1..2. `env` adds IMGSEARCH_REPLICATION_FACTOR=3,
# IMGSEARCH_MIN_INSYNC_REPLICAS=2, IMGSEARCH_INDEX_REPLICAS=1. Data: IMGSEARCH_CLUSTER_DATA
# (<repo>/.engines-cluster); ports: CLUSTER_KAFKA_PORT (19092; broker i: +100*(i-1)),
# CLUSTER_KAFKA_CONTROLLER_PORT (19093, same steps), CLUSTER_OPENSEARCH_PORT (19200; node i: +i-1),
# CLUSTER_OPENSEARCH_TRANSPORT_PORT (19300); heaps: CLUSTER_KAFKA_HEAP_OPTS (-Xms384m -Xmx384m),
# CLUSTER_OPENSEARCH_JAVA_OPTS (-Xms512m -Xmx512m). See docs/operations.md, "Faults beyond one node".
#
# Environment:
#   IMGSEARCH_SECURE (0)  1 = the secured instance: Kafka only over SASL_SSL (SCRAM-SHA-512, ACLs, deny
#       by default), OpenSearch with the security plugin (TLS, basic auth, roles); its own CA and random
#       passwords in <data>/secrets; data <repo>/.engines-secure; its ports: SECURE_KAFKA_PORT (9094),
#       SECURE_KAFKA_CONTROLLER_PORT (9095), SECURE_OPENSEARCH_PORT (9201), SECURE_OPENSEARCH_TRANSPORT_PORT (9301)
#   IMGSEARCH_CACHE (~/.cache/imgsearch)  artifacts: $IMGSEARCH_CACHE/engines, maven repo: .../m2
#   IMGSEARCH_DATA  (<repo>/.engines)     data, logs, pid files
#   KAFKA_PORT (9092) KAFKA_CONTROLLER_PORT (9093) OPENSEARCH_PORT (9200) OPENSEARCH_TRANSPORT_PORT (9300)
#   KAFKA_HEAP_OPTS (-Xms512m -Xmx512m)  OPENSEARCH_JAVA_OPTS (-Xms512m -Xmx1g)
#   IMGSEARCH_OS_USER (imgsearch-os)      system user OpenSearch runs as when we are root
#   ENGINES_START_TIMEOUT (180s)  ENGINES_STOP_TIMEOUT (30s)
#   JAVA_HOME / OPENSEARCH_JAVA_HOME      override the JVMs (Kafka: >= 17, OpenSearch 2.x: 11..21)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$SCRIPT_DIR")
OPS=$REPO/ops

CACHE=${IMGSEARCH_CACHE:-$HOME/.cache/imgsearch}
ENG_CACHE=$CACHE/engines
M2=$CACHE/m2
SECURE=${IMGSEARCH_SECURE:-0}
# ENGINES_MODE=cluster (or --cluster anywhere on the command line): the 3-broker / 2-node cluster
# (cluster section below); its own data dir and ports, the single-node pair is not touched
MODE=${ENGINES_MODE:-single}
_args=()
for _a in "$@"; do if [[ $_a == --cluster ]]; then MODE=cluster; else _args+=("$_a"); fi; done
set -- ${_args[@]+"${_args[@]}"}
[[ $MODE == single || $MODE == cluster ]] || { echo "[engines] ERROR: ENGINES_MODE must be single or cluster" >&2; exit 2; }
if [[ $MODE == cluster && $SECURE == 1 ]]; then echo "[engines] ERROR: the cluster mode is not secured (IMGSEARCH_SECURE=1)" >&2; exit 2; fi
if [[ $MODE == cluster ]]; then
  DATA=${IMGSEARCH_CLUSTER_DATA:-$REPO/.engines-cluster}
  # broker i (1..3): CLUSTER_KAFKA_PORT + 100*(i-1), controller CLUSTER_KAFKA_CONTROLLER_PORT + 100*(i-1);
  # OpenSearch node i (1..2): CLUSTER_OPENSEARCH_PORT + i-1, transport CLUSTER_OPENSEARCH_TRANSPORT_PORT + i-1
  KAFKA_PORT=${CLUSTER_KAFKA_PORT:-19092}; KAFKA_CONTROLLER_PORT=${CLUSTER_KAFKA_CONTROLLER_PORT:-19093}
  OPENSEARCH_PORT=${CLUSTER_OPENSEARCH_PORT:-19200}; OPENSEARCH_TRANSPORT_PORT=${CLUSTER_OPENSEARCH_TRANSPORT_PORT:-19300}
  KAFKA_HEAP_OPTS=${CLUSTER_KAFKA_HEAP_OPTS:--Xms384m -Xmx384m}
  OPENSEARCH_JAVA_OPTS=${CLUSTER_OPENSEARCH_JAVA_OPTS:--Xms512m -Xmx512m}
elif [[ $SECURE == 1 ]]; then
  DATA=${IMGSEARCH_DATA:-$REPO/.engines-secure}
  # its own port variables: the plain pair's KAFKA_PORT etc. may be exported in the same shell
  KAFKA_PORT=${SECURE_KAFKA_PORT:-9094}; KAFKA_CONTROLLER_PORT=${SECURE_KAFKA_CONTROLLER_PORT:-9095}
  OPENSEARCH_PORT=${SECURE_OPENSEARCH_PORT:-9201}; OPENSEARCH_TRANSPORT_PORT=${SECURE_OPENSEARCH_TRANSPORT_PORT:-9301}
else
  DATA=${IMGSEARCH_DATA:-$REPO/.engines}
fi
SECRETS=$DATA/secrets
TOPIC_PREFIX=${IMGSEARCH_TOPIC_PREFIX:-imgsearch}

KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
OPENSEARCH_PORT=${OPENSEARCH_PORT:-9200}
OPENSEARCH_TRANSPORT_PORT=${OPENSEARCH_TRANSPORT_PORT:-9300}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms512m -Xmx512m}
OPENSEARCH_JAVA_OPTS=${OPENSEARCH_JAVA_OPTS:--Xms512m -Xmx1g}
OS_USER=${IMGSEARCH_OS_USER:-imgsearch-os}
START_TIMEOUT=${ENGINES_START_TIMEOUT:-180}
STOP_TIMEOUT=${ENGINES_STOP_TIMEOUT:-30}

KAFKA_POM=$OPS/kafka/pom.xml
OS_POM=$OPS/opensearch/pom.xml
OS_SEC=$OPS/opensearch/security

# single source of truth for versions: the poms
pom_prop() { sed -n "s:.*<$2>\(.*\)</$2>.*:\1:p" "$1" | head -n1; }
KAFKA_VERSION=$(pom_prop "$KAFKA_POM" kafka.version)
OS_VERSION=$(pom_prop "$OS_POM" opensearch.version)
KNN_VERSION=$(pom_prop "$OS_POM" knn.version)
SECURITY_VERSION=$(pom_prop "$OS_SEC/pom.xml" security.version)

KAFKA_HOME=$ENG_CACHE/kafka-$KAFKA_VERSION          # lib/*.jar
OS_CACHE=$ENG_CACHE/opensearch-$OS_VERSION          # artifacts/, dist/ (assembled, k-NN installed)
OS_DIST=dist; OS_STAMP=.installed                    # dist-secure/, .installed-secure: + security plugin
if [[ $SECURE == 1 ]]; then OS_DIST=dist-secure; OS_STAMP=.installed-secure; fi
KAFKA_DATA=$DATA/kafka
OS_DATA=$DATA/opensearch
others_can_enter() { # every existing directory on the way to $1 lets other users through (o+x)
  local d=$1 perm
  while [[ $d != / && -n $d ]]; do
    if [[ -d $d ]]; then perm=$(stat -c %A "$d"); [[ ${perm:9:1} == [xt] ]] || return 1; fi
    d=$(dirname "$d")
  done
}
# OpenSearch runs as its own user (it refuses root): when the data dir sits under a directory that
# user cannot enter (a clone under /root or in a `mktemp -d` dir, mode 700), keep OpenSearch's part
# under /var/tmp instead, at a path derived from the data dir (so stop/status/reset find it again)
if [[ $EUID -eq 0 ]] && ! others_can_enter "$DATA"; then
  OS_DATA=/var/tmp/imgsearch-opensearch-$(printf '%s' "$DATA" | sha256sum | cut -c1-12)
fi

log()  { printf '[engines] %s\n' "$*" >&2; }
die()  { printf '[engines] ERROR: %s\n' "$*" >&2; exit 1; }
now()  { date +%s; }

# ---------------------------------------------------------------- java / tools
java_major() { # $1 = java binary
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = \([0-9.]*\).*/\1/p' \
    | sed 's/^1\.//; s/\..*//'
}

KAFKA_JAVA=""
kafka_java() {
  [[ -n $KAFKA_JAVA ]] && return 0
  local j=""
  if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then j=$JAVA_HOME/bin/java
  elif command -v java >/dev/null 2>&1; then j=$(command -v java)
  else die "java not found (need Java 17+ for Kafka 4.x): install openjdk-17-jre-headless or set JAVA_HOME"; fi
  local m; m=$(java_major "$j")
  [[ -n $m && $m -ge 17 ]] || die "$j is Java '${m:-?}', Kafka ${KAFKA_VERSION} needs Java 17+ (set JAVA_HOME)"
  KAFKA_JAVA=$j
}

OS_JAVA_HOME=""
opensearch_java_home() { # OpenSearch 2.x supports Java 11..21; prefer the default java, never e.g. 25
  [[ -n $OS_JAVA_HOME ]] && return 0
  local cands=() c m
  [[ -n ${OPENSEARCH_JAVA_HOME:-} ]] && cands+=("$OPENSEARCH_JAVA_HOME")
  [[ -n ${JAVA_HOME:-} ]] && cands+=("$JAVA_HOME")
  if command -v java >/dev/null 2>&1; then cands+=("$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"); fi
  for c in /usr/lib/jvm/java-17-openjdk-* /usr/lib/jvm/java-21-openjdk-* /usr/lib/jvm/*17* /usr/lib/jvm/*21*; do
    [[ -d $c ]] && cands+=("$c")
  done
  for c in "${cands[@]}"; do
    [[ -x $c/bin/java ]] || continue
    m=$(java_major "$c/bin/java")
    if [[ -n $m && $m -ge 11 && $m -le 21 ]]; then OS_JAVA_HOME=$c; return 0; fi
  done
  die "no Java 11..21 found for OpenSearch ${OS_VERSION} (install openjdk-17-jre-headless or set OPENSEARCH_JAVA_HOME)"
}

need_cmd() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found: $2"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port_owner() { # best effort description of who listens on a port
  if command -v ss >/dev/null 2>&1; then
    ss -ltnpH "sport = :$1" 2>/dev/null | sed 's/^/    /' | head -n3
  fi
}

pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }
read_pid() { [[ -f $1 ]] && tr -dc '0-9' <"$1" || true; }

sha() { cat "$@" | sha256sum | cut -c1-64; }

# ---------------------------------------------------------------- install
mvn_resolve() { # pom outdir log what: the pom's runtime dependencies from Maven Central (local repo
  # $M2) into outdir, replaced whole only when mvn succeeded
  local pom=$1 out=$2 mlog=$3 what=$4
  mkdir -p "$M2"
  rm -rf "$out.tmp"
  mvn -q -B -Dstyle.color=never -f "$pom" -Dmaven.repo.local="$M2" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$out.tmp" \
      >"$mlog" 2>&1 \
    || { cat "$mlog" >&2; die "mvn failed to resolve $what (output above; pom: $pom)"; }
  rm -rf "$out"; mv "$out.tmp" "$out"
}

install_plugin() { # home zip log what: an OpenSearch plugin from a local zip, offline
  OPENSEARCH_JAVA_HOME=$OS_JAVA_HOME OPENSEARCH_PATH_CONF=$1/config \
    "$1/bin/opensearch-plugin" install --batch "file://$2" >"$3" 2>&1 \
    || { cat "$3" >&2; die "opensearch-plugin install of $4 failed"; }
}

install_kafka() {
  local stamp=$KAFKA_HOME/.installed want
  want="kafka-$KAFKA_VERSION $(sha "$KAFKA_POM")"
  if [[ -f $stamp && $(cat "$stamp") == "$want" && -f $KAFKA_HOME/lib/kafka_2.13-$KAFKA_VERSION.jar ]]; then
    log "kafka $KAFKA_VERSION: already installed ($KAFKA_HOME)"; return 0
  fi
  need_cmd mvn "install maven (apt-get install maven) to fetch artifacts from Maven Central"
  kafka_java
  local t0; t0=$(now)
  log "kafka $KAFKA_VERSION: resolving runtime jars from Maven Central into $KAFKA_HOME/lib ..."
  mkdir -p "$KAFKA_HOME"
  mvn_resolve "$KAFKA_POM" "$KAFKA_HOME/lib" "$KAFKA_HOME/mvn.log" "Kafka artifacts"
  [[ -f $KAFKA_HOME/lib/kafka_2.13-$KAFKA_VERSION.jar ]] || die "kafka_2.13-$KAFKA_VERSION.jar missing after mvn"
  echo "$want" >"$stamp"
  log "kafka $KAFKA_VERSION: installed ($(ls "$KAFKA_HOME/lib" | wc -l) jars, $(( $(now) - t0 ))s)"
}

install_opensearch() {
  local stamp=$OS_CACHE/.installed want
  want="opensearch-$OS_VERSION knn-$KNN_VERSION $(sha "$OS_POM" "$OPS/opensearch/lang-painless.plugin-descriptor.properties" "$OPS/opensearch/lang-painless.plugin-security.policy")"
  if [[ -f $stamp && $(cat "$stamp") == "$want" && -x $OS_CACHE/dist/bin/opensearch ]]; then
    log "opensearch $OS_VERSION + k-NN $KNN_VERSION: already installed ($OS_CACHE/dist)"; return 0
  fi
  need_cmd mvn "install maven (apt-get install maven) to fetch artifacts from Maven Central"
  need_cmd unzip "apt-get install unzip"
  opensearch_java_home
  local t0; t0=$(now)
  local art=$OS_CACHE/artifacts
  log "opensearch $OS_VERSION: resolving distribution, k-NN $KNN_VERSION and lang-painless jars from Maven Central ..."
  mkdir -p "$OS_CACHE"
  mvn_resolve "$OS_POM" "$art" "$OS_CACHE/mvn.log" "OpenSearch artifacts"

  local build=$OS_CACHE/dist.tmp
  rm -rf "$build"; mkdir -p "$build"
  unzip -q "$art/opensearch-$OS_VERSION.zip" -d "$build"
  local home=$build/opensearch-$OS_VERSION
  [[ -x $home/bin/opensearch ]] || die "unexpected layout of opensearch-$OS_VERSION.zip"

  # The integ-test-zip distribution ships only transport-netty4 in modules/. k-NN declares
  # extended.plugins=lang-painless, so assemble the painless module from its Maven jars.
  local pl=$home/modules/lang-painless j
  mkdir -p "$pl"
  for j in lang-painless-"$OS_VERSION".jar opensearch-scripting-painless-spi-"$OS_VERSION".jar; do
    [[ -f $art/$j ]] || die "$j missing from $art"
    cp "$art/$j" "$pl/"
  done
  cp "$art"/antlr4-runtime-*.jar "$art"/asm-*.jar "$pl/"
  sed "s/@OPENSEARCH_VERSION@/$OS_VERSION/g" "$OPS/opensearch/lang-painless.plugin-descriptor.properties" \
    >"$pl/plugin-descriptor.properties"
  cp "$OPS/opensearch/lang-painless.plugin-security.policy" "$pl/plugin-security.policy"

  log "opensearch: installing k-NN plugin offline from $art/opensearch-knn-$KNN_VERSION.zip ..."
  install_plugin "$home" "$art/opensearch-knn-$KNN_VERSION.zip" "$build/plugin-install.log" "k-NN"
  [[ -d $home/plugins/opensearch-knn ]] || die "k-NN plugin dir missing after install"
  rm -rf "$OS_CACHE/dist"; mv "$home" "$OS_CACHE/dist"; rm -rf "$build"
  echo "$want" >"$stamp"
  log "opensearch $OS_VERSION + k-NN $KNN_VERSION: installed in $OS_CACHE/dist ($(( $(now) - t0 ))s)"
}

install_opensearch_security() { # dist-secure = dist + the security plugin (only for IMGSEARCH_SECURE=1)
  install_opensearch
  opensearch_java_home
  local stamp=$OS_CACHE/.installed-secure want
  want="$(cat "$OS_CACHE/.installed") security-$SECURITY_VERSION $(sha "$OS_SEC/pom.xml")"
  if [[ -f $stamp && $(cat "$stamp") == "$want" && -d $OS_CACHE/dist-secure/plugins/opensearch-security ]]; then
    log "opensearch security plugin $SECURITY_VERSION: already installed ($OS_CACHE/dist-secure)"; return 0
  fi
  local t0; t0=$(now) art=$OS_CACHE/security-artifacts
  log "opensearch: resolving the security plugin $SECURITY_VERSION from Maven Central ..."
  mvn_resolve "$OS_SEC/pom.xml" "$art" "$OS_CACHE/mvn-security.log" "the security plugin"
  local home=$OS_CACHE/dist-secure.tmp
  rm -rf "$home"; cp -a "$OS_CACHE/dist" "$home"
  install_plugin "$home" "$art/opensearch-security-$SECURITY_VERSION.zip" "$OS_CACHE/plugin-security.log" "the security plugin"
  [[ -d $home/plugins/opensearch-security && -f $home/config/opensearch-security/action_groups.yml ]] \
    || die "security plugin files missing after install (see $OS_CACHE/plugin-security.log)"
  rm -rf "$OS_CACHE/dist-secure"; mv "$home" "$OS_CACHE/dist-secure"
  echo "$want" >"$stamp"
  log "opensearch security plugin $SECURITY_VERSION: installed in $OS_CACHE/dist-secure ($(( $(now) - t0 ))s)"
}

# ---------------------------------------------------------------- secrets (secured instance)
secret() { cat "$SECRETS/$1.password"; }

new_password() { # principal: a random password, kept in the secrets dir only
  [[ -s $SECRETS/$1.password ]] || (umask 077; openssl rand -hex 24 >"$SECRETS/$1.password")
}

make_secrets() { # a private CA, the node's certificate (SAN 127.0.0.1, localhost) and the service passwords
  [[ -f $SECRETS/.complete ]] && return 0
  need_cmd openssl "apt-get install openssl"
  rm -rf "$SECRETS"; mkdir -p "$SECRETS"; chmod 700 "$SECRETS"
  local ext=$SECRETS/node.ext
  printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'basicConstraints=CA:FALSE' \
    'keyUsage=digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth,clientAuth' >"$ext"
  ( cd "$SECRETS" && umask 077 \
    && openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/O=imgsearch/CN=imgsearch-local-ca" \
         -keyout ca-key.pem -out ca.pem \
    && openssl req -newkey rsa:2048 -nodes -subj "/O=imgsearch/CN=imgsearch-node" -keyout node-key.tmp -out node.csr \
    && openssl pkcs8 -topk8 -nocrypt -in node-key.tmp -out node-key.pem \
    && openssl x509 -req -in node.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 825 -extfile node.ext -out node.pem \
    && cat node-key.pem node.pem >kafka-node.pem && rm -f node-key.tmp node.csr ) >"$DATA/secrets.log" 2>&1 \
    || { cat "$DATA/secrets.log" >&2; die "openssl failed to create the instance's certificates"; }
  chmod 644 "$SECRETS/ca.pem"
  new_password admin; new_password imgsearch-worker
  ( umask 077
    { echo "security.protocol=SASL_SSL"; echo "sasl.mechanism=SCRAM-SHA-512"
      echo "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$(secret admin)\";"
      echo "ssl.truststore.type=PEM"; echo "ssl.truststore.location=$SECRETS/ca.pem"; } >"$SECRETS/kafka-admin.properties"
    echo "machine 127.0.0.1 login admin password $(secret admin)" >"$SECRETS/opensearch-admin.netrc" )
  touch "$SECRETS/.complete"
  log "secured instance: created a private CA, the node certificate and service passwords in $SECRETS"
}

# ---------------------------------------------------------------- kafka
KAFKA_PIDFILE=$KAFKA_DATA/kafka.pid
KAFKA_CONF=$KAFKA_DATA/config/server.properties

kafka_pid() { local p; p=$(read_pid "$KAFKA_PIDFILE"); pid_alive "$p" && grep -qa 'kafka.Kafka' "/proc/$p/cmdline" 2>/dev/null && echo "$p" || true; }

kafka_healthy() { # the broker answers an ApiVersions(v0) request with error_code 0 (over TLS when secured)
  local out req='\x00\x00\x00\x0a\x00\x12\x00\x00\x00\x00\x00\x2a\xff\xff'
  if [[ $SECURE == 1 ]]; then # ApiVersions is answered before SASL authentication
    [[ -f $SECRETS/ca.pem ]] || return 1
    out=$( (printf "$req"; sleep 1) | timeout 5 openssl s_client -quiet -no_ign_eof -verify_return_error -CAfile "$SECRETS/ca.pem" \
            -verify_ip 127.0.0.1 -connect "127.0.0.1:$KAFKA_PORT" 2>/dev/null | head -c 10 | od -An -tx1 | tr -d ' \n') || true
  else
    out=$( (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT" || exit 1
            printf "$req" >&3
            timeout 5 head -c 10 <&3 | od -An -tx1 | tr -d ' \n') 2>/dev/null) || return 1
  fi
  # bytes: size(4) correlation_id(4)=0x2a error_code(2)=0
  [[ ${out:8:8} == 0000002a && ${out:16:4} == 0000 ]]
}

kafka_tool() { # run a Kafka CLI class with the broker's classpath (e.g. org.apache.kafka.tools.TopicCommand)
  kafka_java
  mkdir -p "$KAFKA_DATA/logs/tools"
  "$KAFKA_JAVA" -Xmx256m -cp "$KAFKA_HOME/lib/*" \
    -Dlog4j2.configurationFile="$OPS/kafka/log4j2.properties" -Dkafka.logs.dir="$KAFKA_DATA/logs/tools" "$@"
}

start_kafka() {
  kafka_java
  local pid; pid=$(kafka_pid)
  if [[ -n $pid ]] && kafka_healthy; then log "kafka: already running and healthy (pid $pid, port $KAFKA_PORT)"; return 0; fi
  [[ -n $pid ]] && log "kafka: running (pid $pid) but not healthy yet, waiting"
  if [[ -z $pid ]]; then
    local p
    for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
      if port_open "$p"; then
        log "port $p is already in use by another process:"; port_owner "$p" >&2
        die "kafka: cannot start, port $p taken (set KAFKA_PORT / KAFKA_CONTROLLER_PORT, or stop that process)"
      fi
    done
    mkdir -p "$KAFKA_DATA/config" "$KAFKA_DATA/data" "$KAFKA_DATA/logs"
    local template=${KAFKA_TEMPLATE:-$OPS/kafka/server.properties.template} scram=()
    if [[ $SECURE == 1 ]]; then
      make_secrets
      template=$OPS/kafka/server-secure.properties.template
      # the service users exist from the first start (SCRAM credentials bootstrapped into the metadata)
      scram=(--add-scram "SCRAM-SHA-512=[name=admin,password=$(secret admin)]"
             --add-scram "SCRAM-SHA-512=[name=imgsearch-worker,password=$(secret imgsearch-worker)]")
    fi
    (umask 077; sed -e "s#@KAFKA_PORT@#$KAFKA_PORT#g" -e "s#@KAFKA_CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
        -e "s#@LOG_DIRS@#$KAFKA_DATA/data#g" -e "s#@SECRETS@#$SECRETS#g" \
        -e "s#@NODE_ID@#${KAFKA_NODE_ID:-1}#g" -e "s#@QUORUM_VOTERS@#${KAFKA_QUORUM_VOTERS:-}#g" \
        -e "s#@ADMIN_PASSWORD@#$( [[ $SECURE == 1 ]] && secret admin)#g" "$template" >"$KAFKA_CONF")
    if [[ ! -f $KAFKA_DATA/data/meta.properties ]]; then
      local cid=${KAFKA_CLUSTER_ID:-}  # the cluster mode's brokers share one
      [[ -n $cid ]] || cid=$(kafka_tool kafka.tools.StorageTool random-uuid | tail -n1)
      [[ -n $cid ]] || die "kafka: StorageTool random-uuid failed"
      # static controller.quorum.voters -> format WITHOUT --standalone
      kafka_tool kafka.tools.StorageTool format -t "$cid" -c "$KAFKA_CONF" --ignore-formatted "${scram[@]}" >"$KAFKA_DATA/logs/format.out" 2>&1 \
        || { cat "$KAFKA_DATA/logs/format.out" >&2; die "kafka: storage format failed"; }
      log "kafka: formatted KRaft storage (cluster id $cid)"
    fi
    log "kafka $KAFKA_VERSION: starting on 127.0.0.1:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT) ..."
    # shellcheck disable=SC2016
    setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$KAFKA_PIDFILE" \
      "$KAFKA_JAVA" $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
      -Dkafka.logs.dir="$KAFKA_DATA/logs" -Dlog4j2.configurationFile="$OPS/kafka/log4j2.properties" \
      -cp "$KAFKA_HOME/lib/*" kafka.Kafka "$KAFKA_CONF" \
      >"$KAFKA_DATA/logs/kafka.out" 2>&1 </dev/null &
    disown 2>/dev/null || true
  fi
}

wait_kafka() {
  local t0; t0=$(now)
  while ! kafka_healthy; do
    if [[ -z $(kafka_pid) ]] && (( $(now) - t0 > 3 )); then
      tail -n 30 "$KAFKA_DATA/logs/server.log" "$KAFKA_DATA/logs/kafka.out" 2>/dev/null >&2 || true
      die "kafka: process exited during startup; logs: $KAFKA_DATA/logs/server.log $KAFKA_DATA/logs/kafka.out"
    fi
    (( $(now) - t0 < START_TIMEOUT )) || die "kafka: not healthy after ${START_TIMEOUT}s; logs: $KAFKA_DATA/logs/server.log $KAFKA_DATA/logs/kafka.out"
    sleep 0.5
  done
  log "kafka: healthy on 127.0.0.1:$KAFKA_PORT (pid $(kafka_pid), $(( $(now) - t0 ))s)"
  if [[ $SECURE == 1 && ! -f $KAFKA_DATA/.acls-v1 ]]; then
    grant_kafka worker imgsearch-worker && touch "$KAFKA_DATA/.acls-v1"
  fi
}

acl() { # AclCommand as the admin user: acl --add --allow-principal User:x --operation Write --topic t ...
  kafka_tool org.apache.kafka.tools.AclCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
    --command-config "$SECRETS/kafka-admin.properties" "$@" >>"$KAFKA_DATA/logs/acls.out" 2>&1 \
    || { tail -n 20 "$KAFKA_DATA/logs/acls.out" >&2; die "kafka: AclCommand $* failed"; }
}

grant_kafka() { # role principal: SCRAM user (unless bootstrapped) + the role's ACLs
  local role=$1 p=$2 u="User:$2"
  [[ $SECURE == 1 ]] || die "grant: only for the secured instance (IMGSEARCH_SECURE=1)"
  [[ $p =~ ^[A-Za-z0-9_-]+$ ]] || die "grant: principal '$p' must be letters, digits, '-' or '_'"
  if [[ ! -s $SECRETS/$p.password ]]; then
    new_password "$p"
    kafka_tool kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
      --command-config "$SECRETS/kafka-admin.properties" --alter --entity-type users --entity-name "$p" \
      --add-config "SCRAM-SHA-512=[password=$(secret "$p")]" >>"$KAFKA_DATA/logs/acls.out" 2>&1 \
      || { rm -f "$SECRETS/$p.password"; tail -n 20 "$KAFKA_DATA/logs/acls.out" >&2; die "kafka: could not create user $p"; }
  fi
  case $role in
    worker) # the workers own every topic and consumer group under the prefix (faust creates its own)
      acl --add --allow-principal "$u" --operation All --resource-pattern-type prefixed \
        --topic "$TOPIC_PREFIX" --group "$TOPIC_PREFIX" ;;
    publisher) # upstream apps: write new images and interactions, nothing else
      acl --add --allow-principal "$u" --operation Write --operation Describe \
        --topic "$TOPIC_PREFIX.images.new" --topic "$TOPIC_PREFIX.interactions" ;;
    search-client) # write requests; create and read only its own reply topics
      acl --add --allow-principal "$u" --operation Write --operation Describe --topic "$TOPIC_PREFIX.search.requests"
      acl --add --allow-principal "$u" --operation Create --operation Read --operation Describe \
        --resource-pattern-type prefixed --topic "$TOPIC_PREFIX.search.replies.$p." ;;
    *) die "grant: unknown role '$role' (worker | publisher | search-client)" ;;
  esac
  log "kafka: granted '$role' to $u (password in $SECRETS/$p.password)"
}

# ---------------------------------------------------------------- opensearch
OS_PIDFILE=$OS_DATA/run/opensearch.pid
OS_HOME=$OS_DATA/home
OS_CONF=$OS_DATA/config

opensearch_pid() { local p; p=$(read_pid "$OS_PIDFILE"); pid_alive "$p" && grep -qa 'org.opensearch.bootstrap.OpenSearch' "/proc/$p/cmdline" 2>/dev/null && echo "$p" || true; }

os_url() { if [[ $SECURE == 1 ]]; then echo "https://127.0.0.1:$OPENSEARCH_PORT"; else echo "http://127.0.0.1:$OPENSEARCH_PORT"; fi; }
opensearch_health() {
  local auth=()
  if [[ $SECURE == 1 ]]; then
    [[ -f $SECRETS/opensearch-admin.netrc ]] || return 0
    auth=(--cacert "$SECRETS/ca.pem" --netrc-file "$SECRETS/opensearch-admin.netrc")
  fi
  curl -s -m 5 "${auth[@]}" "$(os_url)/_cluster/health" 2>/dev/null | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p'
}
opensearch_healthy() { local s; s=$(opensearch_health); [[ $s == green || $s == yellow ]]; }

as_os_user() { # run a command as the OpenSearch user (it refuses to run as root)
  if [[ $EUID -eq 0 ]]; then runuser -u "$OS_USER" -- "$@"; else "$@"; fi
}

ensure_os_user() {
  [[ $EUID -eq 0 ]] || return 0
  if ! id -u "$OS_USER" >/dev/null 2>&1; then
    need_cmd useradd "cannot create the '$OS_USER' user OpenSearch must run as (it refuses root)"
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$OS_USER" \
      || die "useradd $OS_USER failed"
    log "opensearch: created system user '$OS_USER' (OpenSearch refuses to run as root)"
  fi
  need_cmd runuser "needed to start OpenSearch as '$OS_USER'"
}

prepare_opensearch_home() {
  # The cache usually sits under /root (mode 700), unreadable for the OpenSearch user: run from a
  # copy under the data dir, owned by that user. Refreshed when the cached install changes.
  local want; want=$(cat "$OS_CACHE/$OS_STAMP")
  if [[ ! -f $OS_DATA/.home-stamp || $(cat "$OS_DATA/.home-stamp") != "$want" ]]; then
    rm -rf "$OS_HOME"; mkdir -p "$OS_DATA"
    cp -a "$OS_CACHE/$OS_DIST" "$OS_HOME"
    echo "$want" >"$OS_DATA/.home-stamp"
  fi
  mkdir -p "$OS_CONF/jvm.options.d" "$OS_DATA/data" "$OS_DATA/logs" "$OS_DATA/run"
  cp "$OS_HOME/config/jvm.options" "$OS_HOME/config/log4j2.properties" "$OS_CONF/"
  sed -e "s#@OPENSEARCH_PORT@#$OPENSEARCH_PORT#g" -e "s#@OPENSEARCH_TRANSPORT_PORT@#$OPENSEARCH_TRANSPORT_PORT#g" \
      -e "s#@DATA_DIR@#$OS_DATA/data#g" -e "s#@LOGS_DIR@#$OS_DATA/logs#g" \
      -e "s#@NODE_NAME@#${OS_NODE_NAME:-}#g" -e "s#@NODE_ROLES@#${OS_NODE_ROLES:-}#g" \
      -e "s#@SEED_HOSTS@#${OS_SEED_HOSTS:-}#g" -e "s#@INITIAL_MANAGERS@#${OS_INITIAL_MANAGERS:-}#g" \
      "${OS_TEMPLATE:-$OPS/opensearch/opensearch.yml.template}" >"$OS_CONF/opensearch.yml"
  if [[ $SECURE == 1 ]]; then secure_opensearch_conf; fi
  if [[ $EUID -eq 0 ]]; then
    chown -R "$OS_USER:" "$OS_DATA"
    as_os_user test -r "$OS_HOME/bin/opensearch" \
      || die "user '$OS_USER' cannot read $OS_HOME (a parent directory is not traversable); set IMGSEARCH_DATA to e.g. /var/tmp/imgsearch-engines"
    [[ $OS_DATA == "$DATA"/opensearch* ]] || log "opensearch: data under $OS_DATA ('$OS_USER' cannot enter $DATA)"
  fi
}

secure_opensearch_conf() { # TLS material, security plugin settings and users (hashes of the random passwords)
  make_secrets
  cat "$OS_SEC/opensearch-secure.yml.template" >>"$OS_CONF/opensearch.yml"
  cp "$SECRETS/ca.pem" "$SECRETS/node.pem" "$SECRETS/node-key.pem" "$OS_CONF/"
  local sc=$OS_CONF/opensearch-security f
  rm -rf "$sc"; mkdir -p "$sc"
  for f in action_groups.yml allowlist.yml audit.yml nodes_dn.yml tenants.yml whitelist.yml; do
    cp "$OS_HOME/config/opensearch-security/$f" "$sc/"
  done
  cp "$OS_SEC/config.yml" "$OS_SEC/roles.yml" "$OS_SEC/roles_mapping.yml" "$sc/"
  local cp="$OS_HOME/plugins/opensearch-security/*:$OS_HOME/plugins/opensearch-security/deps/*:$OS_HOME/lib/*"
  hash_of() { IMGSEARCH_PW=$(secret "$1") "$OS_JAVA_HOME/bin/java" -cp "$cp" org.opensearch.security.tools.Hasher -env IMGSEARCH_PW | tail -n1; }
  local ah wh; ah=$(hash_of admin); wh=$(hash_of imgsearch-worker)
  [[ $ah == \$2* && $wh == \$2* ]] || die "opensearch: could not hash the passwords (security plugin Hasher)"
  (umask 077; sed -e "s#@ADMIN_HASH@#$ah#" -e "s#@WORKER_HASH@#$wh#" "$OS_SEC/internal_users.yml.template" >"$sc/internal_users.yml")
  chmod 600 "$OS_CONF/node-key.pem"
}

start_opensearch() {
  opensearch_java_home
  local pid; pid=$(opensearch_pid)
  if [[ -n $pid ]] && opensearch_healthy; then log "opensearch: already running and healthy (pid $pid, port $OPENSEARCH_PORT)"; return 0; fi
  [[ -n $pid ]] && log "opensearch: running (pid $pid) but not healthy yet, waiting"
  if [[ -z $pid ]]; then
    local p
    for p in "$OPENSEARCH_PORT" "$OPENSEARCH_TRANSPORT_PORT"; do
      if port_open "$p"; then
        log "port $p is already in use by another process:"; port_owner "$p" >&2
        die "opensearch: cannot start, port $p taken (set OPENSEARCH_PORT / OPENSEARCH_TRANSPORT_PORT, or stop that process)"
      fi
    done
    ensure_os_user
    prepare_opensearch_home
    log "opensearch $OS_VERSION: starting on 127.0.0.1:$OPENSEARCH_PORT (java: $OS_JAVA_HOME, opts: $OPENSEARCH_JAVA_OPTS) ..."
    rm -f "$OS_PIDFILE"
    # -d: daemonize, -p: pid file (written by OpenSearch itself); setsid: survive this script.
    (cd "$OS_HOME" && setsid nohup $( [[ $EUID -eq 0 ]] && echo runuser -u "$OS_USER" -- ) \
      env OPENSEARCH_JAVA_HOME="$OS_JAVA_HOME" OPENSEARCH_PATH_CONF="$OS_CONF" OPENSEARCH_JAVA_OPTS="$OPENSEARCH_JAVA_OPTS" \
      JAVA_HOME= "$OS_HOME/bin/opensearch" -d -p "$OS_PIDFILE" >"$OS_DATA/logs/startup.out" 2>&1 </dev/null) \
      || { tail -n 40 "$OS_DATA/logs/startup.out" >&2 || true; die "opensearch: launcher failed; logs: $OS_DATA/logs/ (startup.out, imgsearch-local.log)"; }
  fi
}

wait_opensearch() {
  local t0; t0=$(now)
  while ! opensearch_healthy; do
    if [[ -z $(opensearch_pid) ]] && (( $(now) - t0 > 60 )); then  # it writes its pid file late on a busy machine
      tail -n 40 "$OS_DATA/logs/imgsearch-local.log" "$OS_DATA/logs/startup.out" 2>/dev/null >&2 || true
      die "opensearch: process not running; logs: $OS_DATA/logs/imgsearch-local.log $OS_DATA/logs/startup.out"
    fi
    (( $(now) - t0 < START_TIMEOUT )) || die "opensearch: not healthy after ${START_TIMEOUT}s; logs: $OS_DATA/logs/imgsearch-local.log"
    sleep 1
  done
  log "opensearch: healthy ($(opensearch_health)) on $(os_url) (pid $(opensearch_pid), $(( $(now) - t0 ))s)"
}

# ---------------------------------------------------------------- stop / status
stop_pid() { # name pid
  local name=$1 pid=$2 i
  log "$name: stopping (pid $pid) ..."
  kill -TERM "$pid" 2>/dev/null || true
  for (( i = 0; i < STOP_TIMEOUT * 2; i++ )); do
    pid_alive "$pid" || { log "$name: stopped"; return 0; }
    sleep 0.5
  done
  log "$name: still running after ${STOP_TIMEOUT}s, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.5
}

stop_kafka() {
  local pid; pid=$(kafka_pid)
  if [[ -n $pid ]]; then stop_pid kafka "$pid"; else log "kafka: not running"; fi
  rm -f "$KAFKA_PIDFILE"
}

stop_opensearch() {
  local pid; pid=$(opensearch_pid)
  if [[ -n $pid ]]; then stop_pid opensearch "$pid"; else log "opensearch: not running"; fi
  rm -f "$OS_PIDFILE"
}

status_kafka() {
  local pid h=unhealthy rc=1; pid=$(kafka_pid)
  if kafka_healthy; then h=healthy; rc=0; fi
  if [[ -z $pid && $rc -eq 0 ]]; then h="healthy (port answers, but not started by this script)"; fi
  printf 'kafka       %-10s %s  bootstrap=127.0.0.1:%s pid=%s log=%s\n' \
    "$([[ -n $pid ]] && echo running || echo stopped)" "$h" "$KAFKA_PORT" "${pid:--}" "$KAFKA_DATA/logs/server.log"
  return $rc
}

status_opensearch() {
  local pid s h=unhealthy rc=1; pid=$(opensearch_pid); s=$(opensearch_health)
  if [[ $s == green || $s == yellow ]]; then h="healthy($s)"; rc=0; fi
  if [[ -z $pid && $rc -eq 0 ]]; then h="$h (not started by this script)"; fi
  printf 'opensearch  %-10s %s  url=%s pid=%s log=%s\n' \
    "$([[ -n $pid ]] && echo running || echo stopped)" "$h" "$(os_url)" "${pid:--}" "$OS_DATA/logs/imgsearch-local.log"
  return $rc
}

ensure_gitignore() {
  [[ -z ${IMGSEARCH_DATA:-} ]] || return 0
  local gi=$REPO/.gitignore entry; entry="$(basename "$DATA")/"
  if [[ ! -f $gi ]] || ! grep -qxF "$entry" "$gi"; then
    [[ -s $gi && $(tail -c1 "$gi") != "" ]] && echo >>"$gi"
    echo "$entry" >>"$gi"
  fi
}

install_engine() { if [[ $1 == opensearch && $SECURE == 1 ]]; then install_opensearch_security; else "install_$1"; fi; }

# ---------------------------------------------------------------- cluster mode
# ENGINES_MODE=cluster / --cluster: 3 Kafka brokers in KRaft combined mode (each node is broker and
# controller: a 3-voter quorum survives one loss with 3 JVMs instead of 6) and 2 OpenSearch nodes
# (node 1 cluster manager + data, node 2 data only: with two master-eligible nodes the voting
# configuration keeps one of them, so a second eligible node would add nothing but a split risk).
# Node names: kafka-1..3, opensearch-1..2; "kafka" / "opensearch" = all nodes of that engine.
CLUSTER_BROKERS=3
CLUSTER_OS_NODES=2

kafka_node() { # i: point the kafka globals (ports, data dir, pid file, config) at broker i
  local i=$1 j voters=""
  KAFKA_NODE_ID=$i
  KAFKA_PORT=$(( ${CLUSTER_KAFKA_PORT:-19092} + 100 * (i - 1) ))
  KAFKA_CONTROLLER_PORT=$(( ${CLUSTER_KAFKA_CONTROLLER_PORT:-19093} + 100 * (i - 1) ))
  KAFKA_DATA=$DATA/kafka-$i; KAFKA_PIDFILE=$KAFKA_DATA/kafka.pid; KAFKA_CONF=$KAFKA_DATA/config/server.properties
  KAFKA_TEMPLATE=$OPS/kafka/server-cluster.properties.template
  for (( j = 1; j <= CLUSTER_BROKERS; j++ )); do
    voters+="${voters:+,}$j@127.0.0.1:$(( ${CLUSTER_KAFKA_CONTROLLER_PORT:-19093} + 100 * (j - 1) ))"
  done
  KAFKA_QUORUM_VOTERS=$voters
  KAFKA_CLUSTER_ID=$(cat "$DATA/kafka-cluster-id" 2>/dev/null || true)
}

new_kafka_cluster_id() { # once per cluster: every broker is formatted with the same id
  [[ -s $DATA/kafka-cluster-id ]] && return 0
  mkdir -p "$DATA"
  kafka_tool kafka.tools.StorageTool random-uuid | tail -n1 >"$DATA/kafka-cluster-id"
  [[ -s $DATA/kafka-cluster-id ]] || die "kafka: StorageTool random-uuid failed"
}

opensearch_node() { # i: point the opensearch globals at node i
  local i=$1 j seeds=""
  OPENSEARCH_PORT=$(( ${CLUSTER_OPENSEARCH_PORT:-19200} + i - 1 ))
  OPENSEARCH_TRANSPORT_PORT=$(( ${CLUSTER_OPENSEARCH_TRANSPORT_PORT:-19300} + i - 1 ))
  OS_DATA=$DATA/opensearch-$i
  if [[ $EUID -eq 0 ]] && ! others_can_enter "$DATA"; then
    OS_DATA=/var/tmp/imgsearch-opensearch-$(printf '%s' "$DATA" | sha256sum | cut -c1-12)-$i
  fi
  OS_PIDFILE=$OS_DATA/run/opensearch.pid; OS_HOME=$OS_DATA/home; OS_CONF=$OS_DATA/config
  OS_TEMPLATE=$OPS/opensearch/opensearch-cluster.yml.template
  OS_NODE_NAME=imgsearch-node-$i
  if [[ $i == 1 ]]; then OS_NODE_ROLES='[cluster_manager, data, ingest]'; else OS_NODE_ROLES='[data, ingest]'; fi
  for (( j = 1; j <= CLUSTER_OS_NODES; j++ )); do
    seeds+="${seeds:+, }\"127.0.0.1:$(( ${CLUSTER_OPENSEARCH_TRANSPORT_PORT:-19300} + j - 1 ))\""
  done
  OS_SEED_HOSTS="[$seeds]"; OS_INITIAL_MANAGERS='[imgsearch-node-1]'
}

cluster_targets() { # engine names -> kafka:1 ... opensearch:2
  local t i
  for t in "$@"; do
    case $t in
      kafka) for (( i = 1; i <= CLUSTER_BROKERS; i++ )); do echo "kafka:$i"; done ;;
      opensearch) for (( i = 1; i <= CLUSTER_OS_NODES; i++ )); do echo "opensearch:$i"; done ;;
      kafka-[1-3]) echo "kafka:${t#kafka-}" ;;
      opensearch-[1-2]) echo "opensearch:${t#opensearch-}" ;;
      *) die "unknown cluster node '$t' (kafka | opensearch | kafka-1..$CLUSTER_BROKERS | opensearch-1..$CLUSTER_OS_NODES)" ;;
    esac
  done
}

on_node() { # engine:i verb: run <verb>_<engine> with the globals of that node
  local e=${1%%:*} i=${1#*:}
  "${e}_node" "$i"
  "$2_$e"
}

cluster_bootstrap() { local i s=""; for (( i = 1; i <= CLUSTER_BROKERS; i++ )); do
  s+="${s:+,}127.0.0.1:$(( ${CLUSTER_KAFKA_PORT:-19092} + 100 * (i - 1) ))"; done; echo "$s"; }

wait_opensearch_cluster() { # node 1 (the cluster manager) sees every running node
  opensearch_node 1
  local want=0 i t0 n; t0=$(now)
  for (( i = 1; i <= CLUSTER_OS_NODES; i++ )); do
    opensearch_node "$i"; [[ -n $(opensearch_pid) ]] && want=$(( want + 1 ))
  done
  opensearch_node 1
  while :; do
    n=$(curl -s -m 5 "$(os_url)/_cluster/health" 2>/dev/null | sed -n 's/.*"number_of_nodes":\([0-9]*\).*/\1/p')
    [[ ${n:-0} -ge $want ]] && break
    (( $(now) - t0 < START_TIMEOUT )) || die "opensearch: the cluster has ${n:-0} of $want nodes after ${START_TIMEOUT}s"
    sleep 1
  done
  log "opensearch: cluster of $n nodes ($(opensearch_health)) on $(os_url)"
}

kill_node() { # SIGKILL one node, no shutdown (for fault drills); returns when the process is gone
  local e=${1%%:*} i=${1#*:} pid
  "${e}_node" "$i"
  pid=$("${e}_pid")
  [[ -n $pid ]] || die "$e-$i: not running"
  kill -KILL "$pid"
  while pid_alive "$pid"; do sleep 0.1; done
  log "$e-$i: killed (SIGKILL, pid $pid)"
}

cluster_main() { # verb [nodes...]
  local verb=$1 t0 rc n targets=(); shift
  if [[ $verb == env ]]; then
    echo "KAFKA_BOOTSTRAP=$(cluster_bootstrap)"
    opensearch_node 1; echo "OPENSEARCH_URL=$(os_url)"
    echo "IMGSEARCH_REPLICATION_FACTOR=$CLUSTER_BROKERS"; echo "IMGSEARCH_MIN_INSYNC_REPLICAS=2"
    echo "IMGSEARCH_INDEX_REPLICAS=$(( CLUSTER_OS_NODES - 1 ))"
    return 0
  fi
  [[ $verb == kafka-tool ]] && { install_kafka; kafka_tool "$@"; return $?; }
  [[ $# -gt 0 ]] || set -- kafka opensearch
  mapfile -t targets < <(cluster_targets "$@")
  [[ ${#targets[@]} -gt 0 ]] || die "no cluster node named"
  local engines_used=() e
  for e in kafka opensearch; do [[ " ${targets[*]} " == *" $e:"* ]] && engines_used+=("$e"); done
  case $verb in
    install) for e in "${engines_used[@]}"; do install_engine "$e"; done ;;
    start|restart)
      t0=$(now)
      [[ $verb == restart ]] && for n in "${targets[@]}"; do on_node "$n" stop; done
      for e in "${engines_used[@]}"; do install_engine "$e"; done
      [[ " ${engines_used[*]} " == *" kafka "* ]] && new_kafka_cluster_id
      [[ " ${engines_used[*]} " == *" opensearch "* ]] && ensure_os_user
      for n in "${targets[@]}"; do on_node "$n" start; done   # launch all, then wait (they boot in parallel)
      for n in "${targets[@]}"; do on_node "$n" wait; done
      [[ " ${engines_used[*]} " == *" opensearch "* ]] && wait_opensearch_cluster
      log "cluster start done in $(( $(now) - t0 ))s; bootstrap $(cluster_bootstrap); data+logs: $DATA" ;;
    stop) for n in "${targets[@]}"; do on_node "$n" stop; done ;;
    kill) for n in "${targets[@]}"; do kill_node "$n"; done ;;
    status)
      rc=0
      for n in "${targets[@]}"; do printf '%-12s ' "${n/:/-}"; on_node "$n" status || rc=1; done
      return $rc ;;
    reset)
      for n in "${targets[@]}"; do on_node "$n" stop; done
      for n in "${targets[@]}"; do
        "${n%%:*}_node" "${n#*:}"
        if [[ $n == kafka:* ]]; then rm -rf "$KAFKA_DATA"; log "deleted $KAFKA_DATA"; else rm -rf "$OS_DATA"; log "deleted $OS_DATA"; fi
      done
      # a new cluster id only with a whole new quorum (a single broker must rejoin its cluster)
      if [[ " ${targets[*]} " == *" kafka:1 kafka:2 kafka:3 "* ]]; then rm -f "$DATA/kafka-cluster-id"; fi ;;
    *) die "cluster mode: unknown verb '$verb' (install | start | stop | restart | status | reset | kill | env | kafka-tool)" ;;
  esac
}

# ---------------------------------------------------------------- main
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

verb=${1:-}; shift || true
if [[ $MODE == cluster ]]; then [[ -n $verb && $verb != -h && $verb != --help && $verb != help ]] || { usage; exit 0; }; cluster_main "$verb" "$@"; exit $?; fi
if [[ $verb == kafka-tool ]]; then # e.g. kafka-tool org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:9092 --list
  [[ $# -ge 1 ]] || die "usage: $0 kafka-tool <main class> [args...]"
  install_kafka
  kafka_tool "$@"; exit $?
fi
if [[ $verb == grant ]]; then
  [[ $# -eq 2 ]] || die "usage: IMGSEARCH_SECURE=1 $0 grant <worker|publisher|search-client> <principal>"
  install_kafka; kafka_healthy || die "kafka (secured) is not running: IMGSEARCH_SECURE=1 $0 start"
  grant_kafka "$1" "$2"; exit 0
fi
if [[ $verb == env ]]; then # eval-able client settings; secrets as *_FILE paths, never their values
  echo "KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT"
  echo "OPENSEARCH_URL=$(os_url)"
  if [[ $SECURE == 1 ]]; then
    p=${1:-imgsearch-worker}
    [[ -s $SECRETS/$p.password ]] || die "no principal '$p' (IMGSEARCH_SECURE=1 $0 grant <role> $p)"
    echo "KAFKA_SECURITY_PROTOCOL=SASL_SSL"; echo "KAFKA_SASL_MECHANISM=SCRAM-SHA-512"
    echo "KAFKA_SASL_USERNAME=$p"; echo "KAFKA_SASL_PASSWORD_FILE=$SECRETS/$p.password"
    echo "KAFKA_SSL_CAFILE=$SECRETS/ca.pem"; echo "OPENSEARCH_CA_CERTS=$SECRETS/ca.pem"
    if [[ $p == imgsearch-worker ]]; then
      echo "OPENSEARCH_AUTH=basic"; echo "OPENSEARCH_USER=$p"; echo "OPENSEARCH_PASSWORD_FILE=$SECRETS/$p.password"
    fi
  fi
  exit 0
fi
engines=("$@")
[[ ${#engines[@]} -gt 0 ]] || engines=(kafka opensearch)
for e in "${engines[@]}"; do
  [[ $e == kafka || $e == opensearch ]] || die "unknown engine '$e' (kafka | opensearch)"
done

case $verb in
  install)
    t0=$(now)
    for e in "${engines[@]}"; do install_engine "$e"; done
    log "install done in $(( $(now) - t0 ))s (cache: $ENG_CACHE)" ;;
  start)
    t0=$(now)
    ensure_gitignore
    for e in "${engines[@]}"; do install_engine "$e"; done
    for e in "${engines[@]}"; do "start_$e"; done   # launch both, then wait (they boot in parallel)
    for e in "${engines[@]}"; do "wait_$e"; done
    log "start done in $(( $(now) - t0 ))s; data+logs: $DATA" ;;
  stop)
    for e in "${engines[@]}"; do "stop_$e"; done ;;
  restart)
    for e in "${engines[@]}"; do "stop_$e"; done
    for e in "${engines[@]}"; do install_engine "$e"; done
    for e in "${engines[@]}"; do "start_$e"; done
    for e in "${engines[@]}"; do "wait_$e"; done ;;
  status)
    rc=0
    for e in "${engines[@]}"; do "status_$e" || rc=1; done
    exit $rc ;;
  reset)
    for e in "${engines[@]}"; do "stop_$e"; done
    if [[ ${#engines[@]} -eq 2 ]]; then rm -rf "$DATA"; log "deleted $DATA (cache kept: $ENG_CACHE)"
    else for e in "${engines[@]}"; do rm -rf "${DATA:?}/$e"; log "deleted $DATA/$e"; done; fi
    if [[ " ${engines[*]} " == *" opensearch "* && $OS_DATA != "$DATA/opensearch" ]]; then
      rm -rf "$OS_DATA"; log "deleted $OS_DATA"
    fi ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
