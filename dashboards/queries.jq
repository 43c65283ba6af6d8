# Extract every PromQL expression from a Grafana dashboard and substitute its
# template variables the way Grafana's Prometheus data source would, so the
# result can be sent to a real Prometheus.
#
# Used by check.sh, and as is by the lab's dashboard test
# (tests/tests/dashboards.rs), which runs the queries against two live
# daemons: `jq -c --argjson scenario "$S" -f dashboards/queries.jq FILE`.
#
# Input: one dashboard JSON. Argument $scenario:
#   {
#     "name":    "all",
#     "regex":   {"instance": ".*", ...},   # value of a multi or include-All
#                                           # variable, already rendered as
#                                           # Grafana renders it into a regex
#                                           # matcher: ".*" (allValue) or
#                                           # "(a|b\\.c)" (escaped alternation)
#     "plain":   {"alias": "web", ...},     # value of a single-value variable
#     "builtin": {"__range": "21600s", "__rate_interval": "60s", ...}
#   }
# Which of "regex" and "plain" applies is decided per variable from the
# dashboard's own templating (multi or includeAll => regex), as Grafana does.
#
# Output: one object per expression:
#   {"dashboard", "source": "panel"|"variable", "title", "refId", "instant",
#    "raw", "expr", "label"}
# instant is true for a target Grafana runs as an instant query (tables, bar
# gauges, stats) and for variables; false for a range query (time series).
# A "variable" row is the series selector inside label_values(...) or
# query_result(...); label_values(label) without a selector yields nothing.
# label is the label whose values become the variable's options (null for
# a panel and for query_result), so a caller can list them as Grafana would.
# An expr that still contains "$" names a variable the scenario lacks: the
# caller should treat that as a failure.

# Replace every Grafana spelling of one variable: ${name}, ${name:format},
# [[name]] and $name (not followed by a word character, so $__range does not
# eat $__range_s).
def subst($name; $value):
  gsub("\\$\\{" + $name + "(:[a-zA-Z]+)?\\}"; $value)
  | gsub("\\[\\[" + $name + "\\]\\]"; $value)
  | gsub("\\$" + $name + "(?![a-zA-Z0-9_])"; $value);

# name -> value for this dashboard under $scenario.
def bindings:
  ([.templating.list[]?
     | select(.type != "datasource")
     | .name as $n
     | if (.multi == true or .includeAll == true)
       then {key: $n, value: $scenario.regex[$n]}
       else {key: $n, value: $scenario.plain[$n]}
       end
     | select(.value != null)]
   + [$scenario.builtin | to_entries[]])
  # Longest names first, so no name is replaced inside a longer one.
  | sort_by(-(.key | length));

def substitute($b):
  reduce $b[] as $kv (.; subst($kv.key; $kv.value));

(.title) as $dashboard
| bindings as $b
| (
    # Panel targets, including panels nested in collapsed rows.
    (.. | objects | select(.targets? | type == "array")
      | .title as $title
      | .targets[]
      | select(.expr? | type == "string")
      | {dashboard: $dashboard, source: "panel", title: $title, refId: .refId,
         instant: (.instant == true and .range != true), raw: .expr, "label": null}),
    # Query variables: the selector inside label_values() / query_result().
    (.templating.list[]?
      | select(.type == "query")
      | .name as $name
      | (.query | if type == "object" then .query else . end) as $q
      | ( ($q | capture("^\\s*label_values\\((?<sel>.*),\\s*(?<label>[a-zA-Z_][a-zA-Z0-9_]*)\\s*\\)\\s*$")?)
          // ($q | capture("^\\s*query_result\\((?<sel>.*)\\)\\s*$")?) ) as $m
      | select($m.sel != null)
      | {dashboard: $dashboard, source: "variable", title: ("$" + $name), refId: "",
         instant: true, raw: $m.sel, "label": $m.label})
  )
| .expr = (.raw | substitute($b))
