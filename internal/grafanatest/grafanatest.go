// Package grafanatest reads otpscope's Grafana dashboards (dashboards/*.json)
// and expands their queries as Grafana and grafana-clickhouse-datasource do,
// for the tests that run them against the engine.
package grafanatest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Dashboard is what the tests read of a dashboard.
type Dashboard struct {
	Title      string `json:"title"`
	Templating struct {
		List []Variable `json:"list"`
	} `json:"templating"`
	Panels []Panel `json:"panels"`
}

// Variable is a template variable.
type Variable struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Query      any    `json:"query"`
	AllValue   string `json:"allValue"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
}

// Panel is what the tests read of a panel.
type Panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	// Targets are its queries: SQL on ClickHouse, PromQL (Expr) on
	// Prometheus (dashboards/operations.json).
	Targets []struct {
		RefID  string `json:"refId"`
		RawSQL string `json:"rawSql"`
		Expr   string `json:"expr"`
	} `json:"targets"`
	FieldConfig struct {
		Defaults  FieldDefaults `json:"defaults"`
		Overrides []struct {
			Matcher struct {
				ID      string `json:"id"`
				Options string `json:"options"`
			} `json:"matcher"`
			Properties []struct {
				ID    string `json:"id"`
				Value any    `json:"value"`
			} `json:"properties"`
		} `json:"overrides"`
	} `json:"fieldConfig"`
	Options struct {
		ColorMode string `json:"colorMode"`
	} `json:"options"`
}

// FieldDefaults are a panel's field defaults.
type FieldDefaults struct {
	Unit  string `json:"unit"`
	Color *struct {
		Mode string `json:"mode"`
	} `json:"color"`
	Thresholds *struct {
		Mode  string `json:"mode"`
		Steps []struct {
			Color string   `json:"color"`
			Value *float64 `json:"value"`
		} `json:"steps"`
	} `json:"thresholds"`
}

// UnitOf is the unit a panel shows column col in: its override, else the default.
func (p *Panel) UnitOf(col string) string {
	for _, o := range p.FieldConfig.Overrides {
		if o.Matcher.ID == "byName" && o.Matcher.Options == col {
			for _, pr := range o.Properties {
				if pr.ID == "unit" {
					u, _ := pr.Value.(string)
					return u
				}
			}
		}
	}
	return p.FieldConfig.Defaults.Unit
}

// Load reads every ClickHouse dashboard of dir, by file name. Dashboards
// over another data source (operations.json, on Prometheus) have no SQL to
// run; deploy's tests check those.
func Load(dir string) (map[string]Dashboard, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no dashboards in %s", dir)
	}
	out := map[string]Dashboard{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var d Dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if d.dataSource() != "grafana-clickhouse-datasource" {
			continue
		}
		out[filepath.Base(f)] = d
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no ClickHouse dashboards in %s", dir)
	}
	return out, nil
}

// dataSource is the plugin the dashboard's datasource variable offers.
func (d *Dashboard) dataSource() string {
	for _, v := range d.Templating.List {
		if v.Type == "datasource" {
			q, _ := v.Query.(string)
			return q
		}
	}
	return ""
}

// All is the value of a variable with "All" chosen, as tests give it.
const All = "__all"

// sqlString is Grafana's sqlstring format of a variable's value: quoted,
// a quote doubled. All is not formatted: Grafana writes a custom allValue
// as it is, and the dashboards' is '__all', quoted (the dashboards test
// checks), so that it reads the same.
func sqlString(v string) string {
	if v == All {
		return "'" + All + "'"
	}
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}

// leftVariable is a variable or macro Grafana would have replaced ($name,
// ${name}); a $ closing a regular expression is none.
var leftVariable = regexp.MustCompile(`\$(\w|\{)`)

// macro is how sqlds (the ClickHouse plugin's SQL layer) finds macros.
var macro = regexp.MustCompile(`\$__(\w+)\b(?:\(([^)]*)\))?`)

// Expand does what Grafana and grafana-clickhouse-datasource 4.x do to a
// query before ClickHouse sees it: template variables, then the plugin's
// macros (pkg/macros of the plugin: seconds for $__fromTime, milliseconds for
// the _ms forms, toStartOfInterval for $__timeInterval).
func Expand(sql string, from, to time.Time, interval time.Duration, vars map[string]string) (string, error) {
	for k, v := range vars {
		sql = strings.ReplaceAll(sql, "${"+k+":sqlstring}", sqlString(v))
		sql = strings.ReplaceAll(sql, "${"+k+"}", v)
		sql = regexp.MustCompile(`\$`+k+`\b`).ReplaceAllString(sql, v)
	}
	var err error
	sql = macro.ReplaceAllStringFunc(sql, func(m string) string {
		p := macro.FindStringSubmatch(m)
		name, arg := p[1], strings.TrimSpace(p[2])
		switch name {
		case "fromTime":
			return fmt.Sprintf("toDateTime(%d)", from.Unix())
		case "toTime":
			return fmt.Sprintf("toDateTime(%d)", to.Unix())
		case "fromTime_ms":
			return fmt.Sprintf("fromUnixTimestamp64Milli(%d)", from.UnixMilli())
		case "toTime_ms":
			return fmt.Sprintf("fromUnixTimestamp64Milli(%d)", to.UnixMilli())
		case "timeFilter":
			return fmt.Sprintf("%s >= toDateTime(%d) AND %s <= toDateTime(%d)", arg, from.Unix(), arg, to.Unix())
		case "timeFilter_ms":
			return fmt.Sprintf("%s >= fromUnixTimestamp64Milli(%d) AND %s <= fromUnixTimestamp64Milli(%d)", arg, from.UnixMilli(), arg, to.UnixMilli())
		case "timeInterval":
			return fmt.Sprintf("toStartOfInterval(toDateTime(%s), INTERVAL %d second)", arg, int(interval.Seconds()))
		case "interval_s":
			return fmt.Sprint(int(interval.Seconds()))
		}
		err = fmt.Errorf("unknown macro %s", m)
		return m
	})
	if err != nil {
		return "", err
	}
	if leftVariable.MatchString(sql) {
		return "", fmt.Errorf("unexpanded variable left in:\n%s", sql)
	}
	return sql, nil
}

// ReadAll runs sql and reads every row, as the plugin does; the rows come
// back formatted, sorted, for comparison.
func ReadAll(ctx context.Context, conn clickhouse.Conn, sql string) ([]string, error) {
	rs, err := conn.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		vals := make([]any, len(rs.ColumnTypes()))
		for i, ct := range rs.ColumnTypes() {
			vals[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rs.Scan(vals...); err != nil {
			return nil, err
		}
		var b strings.Builder
		for i, v := range vals {
			if i > 0 {
				b.WriteString(" | ")
			}
			fmt.Fprint(&b, deref(reflect.ValueOf(v)))
		}
		out = append(out, b.String())
	}
	slices.Sort(out)
	return out, rs.Err()
}

// deref is what v points to, through every pointer (Nullable columns scan
// into pointers); NULL for a nil one.
func deref(v reflect.Value) any {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "NULL"
		}
		v = v.Elem()
	}
	return v.Interface()
}
