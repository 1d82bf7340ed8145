//! The dashboard against Grafana's own TypeScript types (the npm package @grafana/schema, through
//! `tsc`): unknown fields, value types, enums and each panel's plugin options, with controls that
//! must be rejected.

use serde_json::Value;

use super::{DASHBOARD, all_panels, dashboard, items};
use crate::common::{TscReport, npm_modules, tsc};
use crate::support::on_path;

/// The types the dashboard is checked against: Grafana's own (@grafana/schema 12.1.1, generated from
/// the CUE schemas of the Grafana we provision), adapted to JSON only where they cannot describe what
/// Grafana reads. Every adaptation keeps excess-property checks, so unknown and misspelt fields are
/// errors at every depth:
///
/// - `Json<T>`: a dashboard file carries the *values* of Grafana's string enums ("absolute",
///   "palette-classic"), not TypeScript enum members, so string enums become the union of their values.
///   Numeric enums (`graphTooltip`, a variable's `hide`/`refresh`/`sort`) stay as they are: TypeScript
///   accepts exactly their member values as numbers.
/// - `Defaulted<T>`: panel `options` and `fieldConfig.defaults.custom` as `Json<T>`, every field
///   optional at every depth. Grafana merges the panel plugin's defaults into what the file gives
///   (PanelModel's plugin-option defaults), so a file need not repeat `frameIndex` or `legend.calcs`;
///   names and types are still checked.
/// - Panels are checked with their plugin's own `Options` and `FieldConfig` (the `raw/composable`
///   modules); the generic `Panel` types both as `Record<string, unknown>`, which checks nothing. Stat
///   has no custom field config, so `custom` must be empty there. A panel type without an entry in
///   `Panels` fails: add its plugin's types.
/// - Targets: @grafana/schema types them as `Record<string, unknown>` and ships no Prometheus query
///   type, so `PromQuery` is its `DataQuery` plus the fields of Grafana's Prometheus query model
///   (`expr`, `instant`, `range`, `exemplar`, `editorMode`, `format`, `legendFormat`,
///   `intervalFactor`, `interval`).
/// - Two things Grafana's own saved dashboards carry that the types lack: a query variable's
///   `definition` (the text of its query, shown in the variables list) and a table footer's
///   `fields: ""` (no selection, i.e. every numeric field, as `[]`; the type only has `string[]`). Both
///   are allowed by name only: the control with `fields: "Up"` must still be rejected.
const DASHBOARD_TYPES_TS: &str = r#"import type * as G from "@grafana/schema";
import type * as TimeSeries from "@grafana/schema/dist/types/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen.js";
import type * as Stat from "@grafana/schema/dist/types/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen.js";
import type * as Table from "@grafana/schema/dist/types/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen.js";
import type * as StateTimeline from "@grafana/schema/dist/types/raw/composable/statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen.js";

type Json<T> = T extends string ? `${T}`
  : T extends readonly (infer U)[] ? Json<U>[]
  : T extends object ? { [K in keyof T]: Json<T[K]> }
  : T;
type Defaulted<T> = T extends string ? `${T}`
  : T extends readonly (infer U)[] ? Defaulted<U>[]
  : T extends object ? { [K in keyof T]?: Defaulted<T[K]> }
  : T;

interface PromQuery extends G.DataQuery {
  expr: string;
  instant?: boolean;
  range?: boolean;
  exemplar?: boolean;
  editorMode?: "code" | "builder";
  format?: "time_series" | "table" | "heatmap";
  legendFormat?: string;
  intervalFactor?: number;
  interval?: string;
}

type FieldConfigOf<Custom> = Json<Omit<G.FieldConfigSource, "defaults">> & {
  defaults: Json<Omit<G.FieldConfig, "custom">> & { custom?: Defaulted<Custom> };
};
type PanelOf<Type extends string, Options, Custom> =
  Json<Omit<G.Panel, "type" | "options" | "fieldConfig" | "targets">> & {
    type: Type;
    options?: Defaulted<Options>;
    fieldConfig?: FieldConfigOf<Custom>;
    targets?: Json<PromQuery>[];
  };
type TableFooter = Omit<NonNullable<Table.Options["footer"]>, "fields"> & { fields?: string[] | "" };
type TableOptions = Omit<Table.Options, "footer"> & { footer?: TableFooter };

type Panels = {
  timeseries: PanelOf<"timeseries", TimeSeries.Options, TimeSeries.FieldConfig>;
  stat: PanelOf<"stat", Stat.Options, Record<string, never>>;
  table: PanelOf<"table", TableOptions, Table.FieldConfig>;
  "state-timeline": PanelOf<"state-timeline", StateTimeline.Options, StateTimeline.FieldConfig>;
  row: Row;
};
type AnyPanel = Panels[Exclude<keyof Panels, "row">];
type Row = Json<Omit<G.RowPanel, "panels">> & { panels: AnyPanel[] };
type Variable = Json<G.VariableModel> & { definition?: string };
type Dashboard = Json<Omit<G.Dashboard, "panels" | "templating">> & {
  panels?: (AnyPanel | Row)[];
  templating?: { list?: Variable[] };
};
"#;

/// One line of the file tsc checks: what it declares, and the declaration.
struct Declaration {
    what: String,
    text: String,
}

/// A declaration of each of `panels` typed by its `type` (a row's panels first, which the row then
/// names instead of repeating them); the names they are declared under.
fn declare_panels(panels: &[Value], out: &mut Vec<Declaration>) -> Vec<String> {
    panels
        .iter()
        .map(|panel| {
            let nested = panel
                .get("panels")
                .and_then(Value::as_array)
                .map(|nested| declare_panels(nested, out));
            let name = format!("panel{}", out.len());
            let kind = panel["type"].as_str().unwrap_or("(no type)");
            out.push(Declaration {
                what: format!(
                    "panel {} ({kind}, {})",
                    panel["id"],
                    panel["title"].as_str().unwrap_or("?")
                ),
                text: format!(
                    "export const {name}: Panels[{}] = {};",
                    Value::from(kind),
                    literal_naming(panel, "panels", nested.as_deref())
                ),
            });
            name
        })
        .collect()
}

/// `object` as a TypeScript object literal (JSON is one), its `key` replaced by an array of the
/// declarations `names` when given.
fn literal_naming(object: &Value, key: &str, names: Option<&[String]>) -> String {
    let Some(names) = names else {
        return object.to_string();
    };
    let mut rest = object.clone();
    rest.as_object_mut().expect("an object").remove(key);
    let text = rest.to_string();
    let open = text.strip_suffix('}').expect("an object");
    let comma = if open.len() > 1 { "," } else { "" };
    format!("{open}{comma}{}:[{}]}}", Value::from(key), names.join(","))
}

/// The dashboard, every panel with its plugin's options and custom field config, and the queries,
/// against Grafana's own TypeScript types (@grafana/schema, the version docker-compose.yml
/// provisions into) under `tsc --strict`: object literals of those types, so that unknown and
/// misspelt fields, wrong value types and values outside Grafana's enums are errors. See
/// [`DASHBOARD_TYPES_TS`] for where the types are adapted to dashboard JSON, and why. Controls, each
/// with one such mistake, must be rejected.
#[test]
fn dashboard_passes_grafanas_schema_types() {
    let node =
        on_path("node").expect("node not found on PATH: install Node.js (Debian package nodejs)");
    let modules = npm_modules(&["@grafana/schema", "typescript"]);
    let dashboard = dashboard();

    // One declaration per line, so that tsc's errors name it by line number.
    let mut declarations = Vec::new();
    let names = declare_panels(items(&dashboard["panels"]), &mut declarations);
    assert_eq!(declarations.len(), all_panels(&dashboard).len());
    let declare_dashboard = |what: &str, name: &str, dashboard: &Value| Declaration {
        what: what.to_owned(),
        text: format!(
            "export const {name}: Dashboard = {};",
            literal_naming(dashboard, "panels", Some(&names))
        ),
    };
    declarations.push(declare_dashboard("the dashboard", "dashboard", &dashboard));
    let checked = declarations.len();

    // Controls, copies with one mistake each: their declaration, and what tsc's error must contain.
    let timeseries = all_panels(&dashboard)
        .into_iter()
        .find(|p| p["type"] == "timeseries")
        .expect("a timeseries panel")
        .clone();
    let table = all_panels(&dashboard)
        .into_iter()
        .find(|p| p["type"] == "table")
        .expect("a table panel")
        .clone();
    let mut controls: Vec<(Declaration, &str)> = Vec::new();
    let mut control_dashboard = |what: &'static str, change: &dyn Fn(&mut Value), expect| {
        let mut changed = dashboard.clone();
        change(&mut changed);
        let name = format!("control{}", controls.len());
        controls.push((declare_dashboard(what, &name, &changed), expect));
    };
    control_dashboard(
        "a misspelt top-level field (refreshh)",
        &|d| d["refreshh"] = "30s".into(),
        "'\"refreshh\"' does not exist",
    );
    control_dashboard(
        "a misspelt field of a query variable (defintion)",
        &|d| {
            let variable = d["templating"]["list"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|v| v["type"] == "query")
                .unwrap();
            let variable = variable.as_object_mut().unwrap();
            let definition = variable.remove("definition").unwrap();
            variable.insert("defintion".into(), definition);
        },
        "'\"defintion\"' does not exist",
    );
    control_dashboard(
        "graphTooltip outside DashboardCursorSync (5)",
        &|d| d["graphTooltip"] = 5.into(),
        "not assignable to type 'DashboardCursorSync",
    );
    let mut control_panel =
        |what: &'static str, panel: &Value, change: &dyn Fn(&mut Value), expect| {
            let mut changed = panel.clone();
            change(&mut changed);
            let name = format!("control{}", controls.len());
            let text = format!(
                "export const {name}: Panels[{}] = {changed};",
                changed["type"]
            );
            controls.push((
                Declaration {
                    what: what.to_owned(),
                    text,
                },
                expect,
            ));
        };
    control_panel(
        "a panel gridPos with a string w",
        &timeseries,
        &|p| p["gridPos"]["w"] = "12".into(),
        "Type 'string' is not assignable to type 'number'",
    );
    control_panel(
        "a state-timeline option on a timeseries panel (options.showValue)",
        &timeseries,
        &|p| p["options"]["showValue"] = "never".into(),
        "'\"showValue\"' does not exist",
    );
    control_panel(
        "a misspelt timeseries legend placement (bottomm)",
        &timeseries,
        &|p| p["options"]["legend"]["placement"] = "bottomm".into(),
        "'\"bottomm\"' is not assignable",
    );
    control_panel(
        "a misspelt timeseries custom field config (fillOpacityy)",
        &timeseries,
        &|p| p["fieldConfig"]["defaults"]["custom"]["fillOpacityy"] = 10.into(),
        "'\"fillOpacityy\"' does not exist",
    );
    control_panel(
        "a color mode outside FieldColorModeId (palette-classik)",
        &timeseries,
        &|p| p["fieldConfig"]["defaults"]["color"]["mode"] = "palette-classik".into(),
        "'\"palette-classik\"' is not assignable",
    );
    control_panel(
        "a misspelt Prometheus query field (legendFromat)",
        &timeseries,
        &|p| p["targets"][0]["legendFromat"] = "{{target}}".into(),
        "'\"legendFromat\"' does not exist",
    );
    control_panel(
        "a table footer `fields` string other than the \"\" Grafana saves",
        &table,
        &|p| p["options"]["footer"]["fields"] = "Up".into(),
        "'\"Up\"' is not assignable",
    );
    control_panel(
        "a misspelt table custom field config (algin)",
        &table,
        &|p| p["fieldConfig"]["defaults"]["custom"]["algin"] = "auto".into(),
        "'\"algin\"' does not exist",
    );
    control_panel(
        "a panel type without types (timeseriess)",
        &timeseries,
        &|p| p["type"] = "timeseriess".into(),
        "Property 'timeseriess' does not exist on type 'Panels'",
    );
    let preamble = DASHBOARD_TYPES_TS.lines().count();

    let mut ts = DASHBOARD_TYPES_TS.to_owned();
    for declaration in declarations.iter().chain(controls.iter().map(|(d, _)| d)) {
        ts.push_str(&declaration.text);
        ts.push('\n');
    }
    // No --skipLibCheck: the package's own declarations must resolve and check too, or a type that
    // failed to resolve could silently check nothing.
    let TscReport {
        passed,
        output,
        mut errors,
        unplaced,
    } = tsc(&node, &modules, &ts, false);
    // The dashboard first: a mistake in it is also in the controls, which are copies of it.
    let failures: Vec<String> = declarations
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            errors
                .remove(&(preamble + i))
                .map(|e| format!("{} does not type-check:\n{}", d.what, e.join("\n")))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{DASHBOARD} against @grafana/schema's types:\n\n{}",
        failures.join("\n\n")
    );
    assert!(!passed, "tsc accepted every control:\n{output}");
    for (i, (control, expect)) in controls.iter().enumerate() {
        let found = errors.remove(&(preamble + checked + i)).unwrap_or_default();
        assert!(
            found.iter().any(|e| e.contains(expect)),
            "tsc did not reject the control with {} (expected an error containing {expect:?}); \
             its errors on that line: {found:#?}\n\nall of tsc's output:\n{output}",
            control.what
        );
    }
    assert!(
        errors.is_empty() && unplaced.is_empty(),
        "tsc errors outside the dashboard's declarations (the types themselves?):\n{output}"
    );
}
