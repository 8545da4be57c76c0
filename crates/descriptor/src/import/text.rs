//! Shared plumbing of the dataset importers: located errors, rows of fields with their
//! columns, unique names and spherical centroids. Private to `import`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use zonal_model::{Amount, Host, Location, Power, PowerModel, Resources};

use super::ImportError;

/// An [`ImportError`] at `line`:`column` of `file`.
pub(crate) fn error(file: &str, line: Option<usize>, column: Option<usize>, message: impl Into<String>) -> ImportError {
    ImportError { file: file.to_string(), line, column, message: message.into() }
}

/// The file name without directories and extension, as a name (`Interoute.graphml` →
/// `interoute`), used to name the imported document.
pub(crate) fn stem(file: &str) -> String {
    let stem = Path::new(file).file_stem().and_then(|s| s.to_str()).filter(|s| !s.is_empty()).unwrap_or(file);
    zonal_model::names::sanitize(stem)
}

/// One field of a row and the 1-based character column where its (trimmed) text starts,
/// when known.
#[derive(Debug, Clone)]
pub(crate) struct Field<'a> {
    pub text: &'a str,
    pub column: Option<usize>,
}

/// One data row of a text file: its 1-based line number and its fields.
#[derive(Debug, Clone)]
pub(crate) struct Row<'a> {
    pub file: &'a str,
    pub line: usize,
    pub fields: Vec<Field<'a>>,
    /// Column just past the last character of the row, for "missing field" errors.
    pub end_column: Option<usize>,
}

impl<'a> Row<'a> {
    /// A row made by splitting `text` (one line, without its line break) on `delimiter`.
    /// `first_column` is the column of `text`'s first character in the file's line.
    pub fn split(file: &'a str, line: usize, text: &'a str, delimiter: char, first_column: usize) -> Row<'a> {
        let mut fields = Vec::new();
        let mut column = first_column;
        for part in text.split(delimiter) {
            let leading = part.chars().take_while(|c| c.is_whitespace()).count();
            fields.push(Field { text: part.trim(), column: Some(column + leading) });
            column += part.chars().count() + 1;
        }
        Row { file, line, fields, end_column: Some(first_column + text.chars().count()) }
    }

    /// A row from a record read by [`csv_records`]. Columns are exact when the raw line,
    /// split on commas, gives back the record's fields (no quoting); otherwise they are
    /// unknown.
    pub fn from_csv(file: &'a str, input: &'a str, record: &'a CsvRecord) -> Row<'a> {
        let CsvRecord { line, byte, record } = record;
        let line = *line;
        let raw = input.get(*byte..).map(|rest| rest.split('\n').next().unwrap_or("").trim_end_matches('\r'));
        let columns: Option<Vec<usize>> = raw.and_then(|raw| {
            let parts: Vec<&str> = raw.split(',').collect();
            (parts.len() == record.len() && parts.iter().zip(record.iter()).all(|(p, f)| *p == f)).then(|| {
                let mut col = 1;
                parts
                    .iter()
                    .map(|p| {
                        let start = col + p.chars().take_while(|c| c.is_whitespace()).count();
                        col += p.chars().count() + 1;
                        start
                    })
                    .collect()
            })
        });
        let fields = record
            .iter()
            .enumerate()
            .map(|(i, f)| Field { text: f.trim(), column: columns.as_ref().map(|c| c[i]) })
            .collect();
        let end_column = columns.as_ref().and(raw).map(|r| r.chars().count() + 1);
        Row { file, line, fields, end_column }
    }

    /// An error located at field `index` (or at the end of the row when it has no such field).
    pub fn error_at(&self, index: usize, message: impl Into<String>) -> ImportError {
        let column = self.fields.get(index).map_or(self.end_column, |f| f.column);
        error(self.file, Some(self.line), column, message)
    }

    /// The trimmed text of field `index`; an error naming `what` when the row is too short.
    pub fn text(&self, index: usize, what: &str) -> Result<&'a str, ImportError> {
        self.fields.get(index).map(|f| f.text).ok_or_else(|| {
            self.error_at(index, format!("expected {what} in field {}, found the end of the row", index + 1))
        })
    }

    /// Field `index` as a non-empty string.
    pub fn non_empty(&self, index: usize, what: &str) -> Result<&'a str, ImportError> {
        let t = self.text(index, what)?;
        if t.is_empty() {
            return Err(self.error_at(index, format!("expected {what} in field {}, found an empty field", index + 1)));
        }
        Ok(t)
    }

    /// Field `index` as a finite decimal number.
    pub fn number(&self, index: usize, what: &str) -> Result<f64, ImportError> {
        let t = self.text(index, what)?;
        match t.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(self.error_at(index, format!("expected {what} (a decimal number), found {t:?}"))),
        }
    }

    /// Field `index` as a finite, non-negative decimal number.
    pub fn non_negative(&self, index: usize, what: &str) -> Result<f64, ImportError> {
        let v = self.number(index, what)?;
        if v < 0.0 {
            return Err(self.error_at(index, format!("expected {what} (a non-negative number), found {v}")));
        }
        Ok(v)
    }

    /// Fields `lat` and `lon` as a location in decimal degrees.
    pub fn location(&self, lat: usize, lon: usize) -> Result<Location, ImportError> {
        let (la, lo) = (self.number(lat, "a latitude")?, self.number(lon, "a longitude")?);
        if !(-90.0..=90.0).contains(&la) {
            return Err(self.error_at(lat, format!("expected a latitude in [-90, 90], found {la}")));
        }
        Location::new(la, lo)
            .ok_or_else(|| self.error_at(lon, format!("expected a longitude in [-180, 180], found {lo}")))
    }
}

/// A CSV record with the 1-based line and byte offset where it starts.
pub(crate) struct CsvRecord {
    pub line: usize,
    pub byte: usize,
    pub record: csv::StringRecord,
}

/// Reads a whole CSV text (comma-separated, first record the header) into records with
/// their line numbers. Records may have any number of fields; the caller checks what it
/// needs. Positions are recomputed from byte offsets: on CRLF files the `csv` crate reports
/// each record as starting at the previous line's `\n`, and its line count lags.
pub(crate) fn csv_records(text: &str, file: &str) -> Result<Vec<CsvRecord>, ImportError> {
    let line_at = |from: usize, to: usize, line: usize| {
        line + text.as_bytes().get(from..to).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
    };
    let skip_eol = |mut byte: usize| {
        while matches!(text.as_bytes().get(byte), Some(b'\r' | b'\n')) {
            byte += 1;
        }
        byte
    };
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut records = Vec::new();
    let (mut last_byte, mut last_line) = (0usize, 1usize);
    for result in reader.records() {
        let record = result.map_err(|e| {
            let line = e.position().map(|p| line_at(last_byte, skip_eol(p.byte() as usize).max(last_byte), last_line));
            error(file, line, None, format!("malformed CSV: {e}"))
        })?;
        let byte = skip_eol(record.position().map_or(last_byte, |p| p.byte() as usize));
        last_line = line_at(last_byte, byte, last_line);
        last_byte = byte;
        records.push(CsvRecord { line: last_line, byte, record });
    }
    Ok(records)
}

/// Index of the header field called `name` (case-insensitive, trimmed), or an error at the
/// header line naming the missing column.
pub(crate) fn header_column(header: &Row, name: &str) -> Result<usize, ImportError> {
    header.fields.iter().position(|f| f.text.eq_ignore_ascii_case(name)).ok_or_else(|| {
        let found: Vec<&str> = header.fields.iter().map(|f| f.text).filter(|t| !t.is_empty()).collect();
        error(
            header.file,
            Some(header.line),
            Some(1),
            format!("expected a header with a column {name:?}, found columns {}", found.join(", ")),
        )
    })
}

/// Index of the optional header field called `name` (case-insensitive, trimmed).
pub(crate) fn optional_column(header: &Row, name: &str) -> Option<usize> {
    header.fields.iter().position(|f| f.text.eq_ignore_ascii_case(name))
}

/// Makes names unique. Item `i` offers `candidates[i]`, ever more specific names (e.g. the
/// label, then the label with the id appended). Every item of a group sharing a name moves
/// to its next candidate, until no name is shared or no member of a shared name has a
/// further candidate; the names still shared then get `-2`, `-3`, ... in item order (the
/// first keeps its name). Deterministic; each item must offer at least one candidate.
pub(crate) fn unique_names(candidates: &[Vec<String>]) -> Vec<String> {
    // Dataset labels may hold characters names cannot ("Southfield/Detroit", upper case):
    // each becomes a name (`zonal_model::names::sanitize`).
    let candidates: Vec<Vec<String>> =
        candidates.iter().map(|c| c.iter().map(|n| zonal_model::names::sanitize(n)).collect()).collect();
    let candidates = &candidates;
    let name_of = |i: usize, level: &[usize]| candidates[i].get(level[i]).cloned().unwrap_or_default();
    let mut level = vec![0usize; candidates.len()];
    loop {
        let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
        for i in 0..candidates.len() {
            groups.entry(name_of(i, &level)).or_default().push(i);
        }
        let mut advanced = false;
        for members in groups.values().filter(|m| m.len() > 1) {
            for &i in members {
                if level[i] + 1 < candidates[i].len() {
                    level[i] += 1;
                    advanced = true;
                }
            }
        }
        if !advanced {
            break;
        }
    }
    let names: Vec<String> = (0..candidates.len()).map(|i| name_of(i, &level)).collect();
    let all: HashSet<&str> = names.iter().map(String::as_str).collect();
    let mut used: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(names.len());
    for name in &names {
        if used.contains(name) {
            let mut k = 2;
            while used.contains(&format!("{name}-{k}")) || all.contains(format!("{name}-{k}").as_str()) {
                k += 1;
            }
            let fresh = format!("{name}-{k}");
            used.insert(fresh.clone());
            out.push(fresh);
        } else {
            used.insert(name.clone());
            out.push(name.clone());
        }
    }
    out
}

/// The spherical centroid of `points`: the mean of their unit vectors, projected back onto
/// the sphere (so that points on both sides of the antimeridian average correctly). For
/// points a few hundred kilometres apart it differs from the arithmetic mean of latitudes
/// and longitudes by metres. Falls back to that arithmetic mean in the degenerate case of
/// points cancelling out (e.g. two antipodes). `None` when `points` is empty.
pub(crate) fn centroid<I: IntoIterator<Item = Location>>(points: I) -> Option<Location> {
    let (mut x, mut y, mut z, mut lat_sum, mut lon_sum, mut n) = (0.0, 0.0, 0.0, 0.0, 0.0, 0usize);
    for p in points {
        let (la, lo) = (p.lat.to_radians(), p.lon.to_radians());
        x += la.cos() * lo.cos();
        y += la.cos() * lo.sin();
        z += la.sin();
        lat_sum += p.lat;
        lon_sum += p.lon;
        n += 1;
    }
    if n == 0 {
        return None;
    }
    let (x, y, z) = (x / n as f64, y / n as f64, z / n as f64);
    let norm = (x * x + y * y + z * z).sqrt();
    if norm < 1e-9 {
        return Some(Location { lat: lat_sum / n as f64, lon: lon_sum / n as f64 });
    }
    let lat = z.atan2((x * x + y * y).sqrt()).to_degrees().clamp(-90.0, 90.0);
    let lon = y.atan2(x).to_degrees().clamp(-180.0, 180.0);
    Some(Location { lat, lon })
}

/// A host template: `cpu` cores, `memory_gib` GiB of memory, `disk_gib` GiB of disk (none
/// when zero), power `idle_w`/`max_w` watts, available. Its name is set per zone.
pub(crate) fn host_template(cpu: u64, memory_gib: u64, disk_gib: u64, idle_w: f64, max_w: f64) -> Host {
    let mut capacity = Resources::new()
        .with(zonal_model::resources::CPU, Amount::cpu(cpu * 1000))
        .with(zonal_model::resources::MEMORY, Amount::bytes(memory_gib << 30));
    if disk_gib > 0 {
        capacity = capacity.with(zonal_model::resources::DISK, Amount::bytes(disk_gib << 30));
    }
    Host {
        name: String::new(),
        capacity,
        features: BTreeMap::new(),
        power: PowerModel { idle: Power::from_watts(idle_w), max: Power::from_watts(max_w) },
        available: true,
    }
}

/// A copy of `template` named `name`.
pub(crate) fn named_host(template: &Host, name: String) -> Host {
    Host { name, ..template.clone() }
}

/// Formats a location for report notes.
pub(crate) fn fmt_location(l: &Location) -> String {
    format!("({:.4}, {:.4})", l.lat, l.lon)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_append_candidates_then_counters() {
        let c = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let names = unique_names(&[
            c(&["Paris", "Paris-12"]),
            c(&["Lyon", "Lyon-3"]),
            c(&["Paris", "Paris-40"]),
            c(&["X"]),
            c(&["X"]),
            c(&["X-2"]),
        ]);
        assert_eq!(names, ["paris-12", "lyon", "paris-40", "x", "x-3", "x-2"]);
    }

    #[test]
    fn centroid_handles_the_antimeridian() {
        let c = centroid([Location { lat: 0.0, lon: 179.0 }, Location { lat: 0.0, lon: -179.0 }]).unwrap();
        assert!((c.lon.abs() - 180.0).abs() < 1e-6, "{c:?}");
        let c = centroid([Location { lat: 10.0, lon: 10.0 }, Location { lat: 10.0, lon: 10.0 }]).unwrap();
        assert!((c.lat - 10.0).abs() < 1e-9 && (c.lon - 10.0).abs() < 1e-9);
        assert!(centroid(std::iter::empty()).is_none());
    }

    #[test]
    fn csv_positions_survive_crlf() {
        let text = "a,b\r\n1,2\r\n\r\n3,x\r\n\"q,1\",y\r\n";
        let records = csv_records(text, "f.csv").unwrap();
        let rows: Vec<Row> = records.iter().map(|r| Row::from_csv("f.csv", text, r)).collect();
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 2, 4, 5]);
        let e = rows[2].number(1, "b").unwrap_err();
        assert_eq!((e.file.as_str(), e.line, e.column), ("f.csv", Some(4), Some(3)));
        assert_eq!(rows[3].fields[0].text, "q,1");
        assert_eq!(rows[3].fields[0].column, None, "quoted rows have no exact columns");
    }

    #[test]
    fn rows_locate_their_fields() {
        let row = Row::split("f.csv", 7, "a,  12.5 ,x", ',', 1);
        assert_eq!(row.number(1, "a weight").unwrap(), 12.5);
        let e = row.number(2, "a weight").unwrap_err();
        assert_eq!((e.line, e.column), (Some(7), Some(11)));
        let e = row.text(5, "a name").unwrap_err();
        assert_eq!(e.column, Some(12));
        assert!(e.message.contains("end of the row"));
    }
}
