#!/usr/bin/env bash
# Checks everything in dashboards/:
#   1. promtool check rules   on recording.yml and alerts.yml;
#   2. promtool test rules    on tests/*.yml (every alert fires and stays
#                             silent where it should; the recording joins);
#   3. every dashboard expression and variable selector, with its template
#      variables substituted as Grafana would (queries.jq) under several
#      scenarios (All, one value, several values), must parse: promtool
#      check rules on them, no Prometheus needed;
#   4. the same expressions run against a real Prometheus that this script
#      starts on 127.0.0.1 with an empty TSDB into which it backfills two
#      hours of synthetic metrics (tests/fixture.series), loading both rule
#      files: every query must succeed, every query must return data in the
#      "All" scenario, and every rule must evaluate without error.
#
# Usage: dashboards/check.sh [--print]
#   --print   also print each substituted expression (scenario "single").
#
# Needs promtool and prometheus (Debian package prometheus), jq and curl.
# When one is missing and we are root, it is installed with apt-get;
# otherwise the script says what to install. It only talks to the
# Prometheus it started, on 127.0.0.1, and stops it on exit.
#
# The last line is "dashboards: N passed, M failed"; exit status 1 if any
# check failed.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

print=0
for arg in "$@"; do
    case "$arg" in
        --print) print=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "check.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

dashboards=(aliasstat.json aliasstat-fleet.json aliasstat-billing.json)
rule_files=(recording.yml alerts.yml)

passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); printf 'FAIL: %s\n' "$*" >&2; }
finish() {
    echo "dashboards: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# --- tools ----------------------------------------------------------------
missing=()
for tool in promtool:prometheus prometheus:prometheus jq:jq curl:curl; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
    # shellcheck disable=SC2207 # package names have no spaces
    missing=($(printf '%s\n' "${missing[@]}" | sort -u))
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "check.sh: installing ${missing[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "check.sh: missing ${missing[*]}: run \`apt-get install ${missing[*]}\` as root" >&2
        exit 2
    fi
fi

tmp="$(mktemp -d)"
prom_pid=""
stop_prometheus() {
    if [ -n "$prom_pid" ]; then
        kill "$prom_pid" 2>/dev/null || true
        wait "$prom_pid" 2>/dev/null || true
        prom_pid=""
    fi
}
cleanup() {
    stop_prometheus
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1 and 2: the rule files and their unit tests -------------------------
for f in "${rule_files[@]}"; do
    if promtool check rules "$f" >"$tmp/out" 2>&1; then pass; else cat "$tmp/out" >&2; fail "promtool check rules $f"; fi
done
for f in tests/*.yml; do
    if promtool test rules "$f" >"$tmp/out" 2>&1; then pass; else cat "$tmp/out" >&2; fail "promtool test rules $f"; fi
done

# --- 3: dashboard expressions parse ---------------------------------------
# Scenarios: how Grafana renders each variable. A multi-value or include-All
# variable inside =~"..." becomes its allValue (".*") or an alternation of
# regex-escaped values, with "." written as \\. inside the PromQL string; a
# single-value variable is its raw value. $job has no allValue, so "All"
# is the alternation of every job. Builtins use Grafana's own spellings.
scenarios=(
'{"name":"all",
  "regex":{"job":"(aliasstat)","instance":".*","interface":".*","owner":".*","alias":".*"},
  "plain":{"alias":"web"},
  "builtin":{"__range":"21600s","__rate_interval":"60s","__interval":"15s"}}'
'{"name":"single",
  "regex":{"job":"aliasstat","instance":"node-a:9864","interface":"eth0","owner":"acme","alias":"web"},
  "plain":{"alias":"web"},
  "builtin":{"__range":"86400s","__rate_interval":"1m","__interval":"1m"}}'
'{"name":"multi",
  "regex":{"job":"(aliasstat|aliasstat_lab)","instance":"(node-a:9864|10\\\\.0\\\\.0\\\\.1:9864)","interface":"(eth0|bond0\\\\.100)","owner":"(acme|globex)","alias":"(web|mail)"},
  "plain":{"alias":"mail"},
  "builtin":{"__range":"3600s","__rate_interval":"2m","__interval":"30s"}}'
)

: >"$tmp/queries.jsonl"
for s in "${scenarios[@]}"; do
    name="$(jq -r .name <<<"$s")"
    jq -c --argjson scenario "$s" --arg scen "$name" -f queries.jq "${dashboards[@]}" \
        | jq -c --arg scen "$name" '. + {scenario: $scen}' >>"$tmp/queries.jsonl"
done
total="$(wc -l <"$tmp/queries.jsonl")"
if [ "$total" -lt 40 ]; then
    fail "only $total dashboard queries extracted; queries.jq or the dashboards are broken"
fi

if [ "$print" -eq 1 ]; then
    jq -r 'select(.scenario == "single") | "## \(.dashboard) / \(.title) \(.refId)\n\(.expr)\n"' "$tmp/queries.jsonl"
fi

# Any "$" left means a variable the scenarios do not know.
while IFS= read -r line; do
    fail "unsubstituted variable: $line"
done < <(jq -r 'select(.expr | contains("$")) | "\(.scenario) \(.dashboard) / \(.title) \(.refId): \(.expr)"' "$tmp/queries.jsonl")

# One recording rule per expression: promtool parses each with Prometheus's
# own parser. JSON is valid YAML, so jq writes the rule file.
jq -s '{groups: [to_entries[] | {name: "q\(.key)", rules: [{record: "dashboard_query", expr: .value.expr}]}]}' \
    "$tmp/queries.jsonl" >"$tmp/queries.rules.json"
if promtool check rules "$tmp/queries.rules.json" >"$tmp/out" 2>&1; then
    passed=$((passed + total))
else
    # Name the culprits: promtool reports the group (q<index>) of each.
    for i in $(seq 0 $((total - 1))); do
        if grep -q "\"q$i\"\|group q$i\b\|q$i:" "$tmp/out"; then
            fail "parse: $(jq -r --argjson i "$i" -s '.[$i] | "\(.scenario) \(.dashboard) / \(.title) \(.refId): \(.expr)"' "$tmp/queries.jsonl")"
        else
            pass
        fi
    done
    cat "$tmp/out" >&2
    if ! grep -q 'q[0-9]' "$tmp/out"; then fail "promtool check rules on the dashboard queries"; fi
fi

# --- 4: run them against a real Prometheus ---------------------------------
step=15
start=$(( $(date +%s) / step * step - 7200 ))
awk -v start="$start" -v step="$step" '
    /^[[:space:]]*(#|$)/ { next }
    {
        from = $1; to = $2; v = $3; slope = $4; s = $5
        if (v == "+") v = last[s]; else if (v == "START") v = start
        for (t = from; t < to; t += step) printf "%s %.6f %d\n", s, v + slope * (t - from), start + t
        last[s] = v + slope * (to - from)
    }
    END { print "# EOF" }' tests/fixture.series >"$tmp/fixture.om"
if ! promtool tsdb create-blocks-from openmetrics "$tmp/fixture.om" "$tmp/data" >"$tmp/out" 2>&1; then
    cat "$tmp/out" >&2
    fail "backfilling tests/fixture.series"
    finish; exit
fi

# start_prometheus CONFIG: start a Prometheus on a free port of 127.0.0.1
# with its TSDB in $tmp/data; sets prom_pid and api, or returns 1.
start_prometheus() {
    local try port=""
    for _ in 1 2 3 4 5; do
        try=$(( 20000 + RANDOM % 40000 ))
        prometheus --config.file="$1" --storage.tsdb.path="$tmp/data" \
            --web.listen-address="127.0.0.1:$try" --log.level=warn >"$tmp/prometheus.log" 2>&1 &
        prom_pid=$!
        for _ in $(seq 1 100); do
            if curl -fs "http://127.0.0.1:$try/-/ready" >/dev/null 2>&1; then port=$try; break; fi
            kill -0 "$prom_pid" 2>/dev/null || break
            sleep 0.1
        done
        [ -n "$port" ] && break
        stop_prometheus
    done
    if [ -z "$port" ]; then cat "$tmp/prometheus.log" >&2; return 1; fi
    base="http://127.0.0.1:$port"
    api="$base/api/v1"
}

# First run, without rules: only to backfill the recording rules' history
# over the fixture, so range queries and subqueries over recorded series see
# two hours, as they would in production.
printf 'global:\n  evaluation_interval: 1s\n' >"$tmp/plain.yml"
if ! start_prometheus "$tmp/plain.yml"; then fail "starting prometheus on 127.0.0.1"; finish; exit; fi
end=$(( start + 7200 - step ))
if promtool tsdb create-blocks-from rules --start="$start" --end="$end" --eval-interval=60s \
        --url="$base" --output-dir="$tmp/rules-data" recording.yml >"$tmp/out" 2>&1; then
    pass
else
    cat "$tmp/out" >&2
    fail "backfilling the recording rules"
fi
stop_prometheus
find "$tmp/rules-data" -mindepth 1 -maxdepth 1 -type d -exec mv {} "$tmp/data/" \;

# Second run: both rule files, evaluated live every second.
cat >"$tmp/prometheus.yml" <<EOF
global:
  evaluation_interval: 1s
rule_files:
  - $here/recording.yml
  - $here/alerts.yml
EOF
if ! start_prometheus "$tmp/prometheus.yml"; then fail "starting prometheus on 127.0.0.1"; finish; exit; fi

# Wait until every rule has been evaluated at least once.
for _ in $(seq 1 100); do
    unknown="$(curl -fs "$api/rules" | jq '[.data.groups[].rules[] | select(.health == "unknown")] | length')"
    [ "$unknown" = "0" ] && break
    sleep 0.2
done
while IFS=$'\t' read -r health name err; do
    if [ "$health" = "ok" ]; then pass; else fail "rule $name evaluates with health $health: $err"; fi
done < <(curl -fs "$api/rules" | jq -r '.data.groups[].rules[] | [.health, .name, (.lastError // "")] | @tsv')

# What some panels must show on the fixture (scenario "all"), as a jq test
# on the query's .data.result. Tab-separated: panel title, refId, test.
expectations="$(cat <<'EOF'
Undocumented addresses with traffic	A	[.[].metric.address] == ["203.0.113.50"]
Traffic to absent and foreign addresses	A	([.[].metric | "\(.state) \(.address) \(.instance)"] | sort) == ["absent 192.0.2.10 node-a:9864", "foreign 224.0.0.18 node-b:9864"]
Bytes per owner	A	([.[].metric.owner] | sort) == ["acme", "globex", "initech"]
Bytes per alias	A	([.[].metric.alias] | sort) == ["dsr", "mail", "old", "web"]
Hosts holding $alias now	A	.[0].value[1] == "1"
Where $alias lives now	A	[.[].metric.instance] == ["node-b:9864"]
Moves of $alias in the selected range	A	([.[] | "\(.metric.instance) \(.value[1])"] | sort) == ["node-a:9864 1", "node-b:9864 1"]
Holders of every documented alias	A	([.[] | "\(.metric.alias) \(.value[1])"] | sort) == ["dsr 1", "mail 1", "web 1"]
Holders of every documented alias	B	([.[] | "\(.metric.alias) \(.value[1])"] | sort) == ["dsr 1"]
Map fill	A	([.[].value[1] | tonumber] | max) > 0.9
EOF
)"

now=$(date +%s)
while IFS= read -r q; do
    expr="$(jq -r .expr <<<"$q")"
    scen="$(jq -r .scenario <<<"$q")"
    title="$(jq -r .title <<<"$q")"
    ref="$(jq -r .refId <<<"$q")"
    where="$scen $(jq -r .dashboard <<<"$q") / $title $ref"
    if [ "$(jq -r .instant <<<"$q")" = "true" ]; then
        resp="$(curl -s --data-urlencode "query=$expr" "$api/query")"
    else
        resp="$(curl -s --data-urlencode "query=$expr" --data-urlencode "start=$start" \
            --data-urlencode "end=$now" --data-urlencode "step=60" "$api/query_range")"
    fi
    status="$(jq -r .status <<<"$resp" 2>/dev/null || echo invalid)"
    if [ "$status" != "success" ]; then
        fail "query: $where: $(jq -r '.error // .' <<<"$resp" 2>/dev/null || echo "$resp")"
        continue
    fi
    if [ "$scen" = "all" ]; then
        if [ "$(jq '.data.result | length' <<<"$resp")" -eq 0 ]; then
            fail "query returned no data on the fixture: $where: $expr"
            continue
        fi
        test="$(awk -F'\t' -v t="$title" -v r="$ref" '$1 == t && $2 == r { print $3 }' <<<"$expectations")"
        if [ -n "$test" ] && [ "$(jq "(.data.result | $test)" <<<"$resp")" != "true" ]; then
            fail "unexpected result: $where: expected $test, got $(jq -c '[.data.result[] | [.metric, .value]]' <<<"$resp")"
            continue
        fi
    fi
    pass
done <"$tmp/queries.jsonl"

finish
