//! One value of a row, as both engines see it: what `store migrate` carries from one to the
//! other and what the checksum of a table is computed over.
//!
//! The five kinds are SQLite's storage classes. On PostgreSQL an integer is BIGINT (INTEGER
//! and SMALLINT, and BOOLEAN as 0/1, are read too), a real DOUBLE PRECISION, text TEXT and a
//! blob BYTEA; any other column type is refused with its name.

use std::error::Error;

use bytes::BytesMut;
use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use rusqlite::types::{ToSqlOutput, ValueRef};
use sha2::{Digest, Sha256};

use crate::store::db::CellRef;

/// A value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

type BoxError = Box<dyn Error + Sync + Send>;

impl Cell {
    /// The value SQLite returned.
    pub fn from_sqlite(value: ValueRef<'_>) -> Result<Self, std::str::Utf8Error> {
        Ok(match value {
            ValueRef::Null => Self::Null,
            ValueRef::Integer(i) => Self::Int(i),
            ValueRef::Real(f) => Self::Real(f),
            ValueRef::Text(t) => Self::Text(std::str::from_utf8(t)?.to_owned()),
            ValueRef::Blob(b) => Self::Blob(b.to_vec()),
        })
    }

    /// Feed the value to a checksum: a tag byte, then the value's bytes (length-prefixed for
    /// text and blobs), so that no two rows of different values feed the same bytes.
    pub fn feed(&self, hash: &mut Sha256) {
        match self {
            Self::Null => hash.update([0]),
            Self::Int(i) => {
                hash.update([1]);
                hash.update(i.to_le_bytes());
            }
            Self::Real(f) => {
                hash.update([2]);
                hash.update(f.to_bits().to_le_bytes());
            }
            Self::Text(t) => {
                hash.update([3]);
                hash.update((t.len() as u64).to_le_bytes());
                hash.update(t.as_bytes());
            }
            Self::Blob(b) => {
                hash.update([4]);
                hash.update((b.len() as u64).to_le_bytes());
                hash.update(b);
            }
        }
    }
}

impl rusqlite::ToSql for Cell {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Self::Null => ValueRef::Null,
            Self::Int(i) => ValueRef::Integer(*i),
            Self::Real(f) => ValueRef::Real(*f),
            Self::Text(t) => ValueRef::Text(t.as_bytes()),
            Self::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl ToSql for Cell {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        CellRef::from_cell(self).to_sql(ty, out)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A borrowed cell goes to PostgreSQL as its owned form would (the run writer's rows are
/// encoded from borrowed values, without a copy of each text).
impl ToSql for CellRef<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match (*self, ty) {
            (Self::Null, _) => Ok(IsNull::Yes),
            (Self::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (Self::Int(i), &Type::INT4) => i32::try_from(i)?.to_sql(ty, out),
            (Self::Int(i), &Type::INT2) => i16::try_from(i)?.to_sql(ty, out),
            (Self::Int(i), &Type::BOOL) => (i != 0).to_sql(ty, out),
            (Self::Int(i), &Type::FLOAT8) => (i as f64).to_sql(ty, out),
            (Self::Real(f), &Type::FLOAT8) => f.to_sql(ty, out),
            (Self::Real(f), &Type::FLOAT4) => (f as f32).to_sql(ty, out),
            (Self::Text(t), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME) => {
                t.to_sql(ty, out)
            }
            (Self::Blob(b), &Type::BYTEA) => b.to_sql(ty, out),
            (cell, ty) => Err(format!("{} does not fit a column of type {ty}", cell.kind()).into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(match *ty {
            Type::INT8 => Self::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Self::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Self::Int(i16::from_sql(ty, raw)?.into()),
            Type::BOOL => Self::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Self::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Self::Real(f32::from_sql(ty, raw)?.into()),
            Type::BYTEA => Self::Blob(<Vec<u8>>::from_sql(ty, raw)?),
            Type::NUMERIC => numeric(raw)?,
            _ => Self::Text(String::from_sql(ty, raw)?),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Self::Null)
    }

    fn accepts(ty: &Type) -> bool {
        supported(ty)
    }
}

/// A NUMERIC (what `sum` and `avg` of BIGINT give) in its binary form: an integer when it
/// has no fraction digits and fits, else a real. The form: digit count, weight (of the first
/// base-10000 digit), sign, display scale, then the base-10000 digits.
fn numeric(raw: &[u8]) -> Result<Cell, BoxError> {
    let word = |i: usize| -> Result<u16, BoxError> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "a NUMERIC value cut short".into())
    };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(1)?.cast_signed());
    let sign = word(2)?;
    let scale = word(3)?;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok(Cell::Real(f64::NAN)),
        0xD000 => return Ok(Cell::Real(f64::INFINITY)),
        0xF000 => return Ok(Cell::Real(f64::NEG_INFINITY)),
        other => return Err(format!("a NUMERIC value with sign {other:#x}").into()),
    }
    let negative = sign == 0x4000;
    let mut int: Option<i128> = Some(0);
    let mut real = 0f64;
    for (i, power) in (0..ndigits).zip((i32::MIN..=weight).rev()) {
        let digit = word(4 + i)?;
        real += f64::from(digit) * 10000f64.powi(power);
        int = match (int, power >= 0) {
            (Some(v), true) => u32::try_from(power)
                .ok()
                .and_then(|p| 10000i128.checked_pow(p))
                .and_then(|m| v.checked_add(i128::from(digit) * m)),
            (v, false) if digit == 0 => v,
            _ => None,
        };
    }
    if scale == 0
        && let Some(v) = int.and_then(|v| i64::try_from(if negative { -v } else { v }).ok())
    {
        return Ok(Cell::Int(v));
    }
    Ok(Cell::Real(if negative { -real } else { real }))
}

/// Whether a PostgreSQL column type is one a cell reads and writes.
pub fn supported(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::INT8
            | Type::INT4
            | Type::INT2
            | Type::BOOL
            | Type::FLOAT8
            | Type::FLOAT4
            | Type::NUMERIC
            | Type::BYTEA
            | Type::TEXT
            | Type::VARCHAR
            | Type::BPCHAR
            | Type::NAME
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(cells: &[Cell]) -> Vec<u8> {
        let mut h = Sha256::new();
        for c in cells {
            c.feed(&mut h);
        }
        h.finalize().to_vec()
    }

    #[test]
    fn checksum_tells_kinds_and_boundaries_apart() {
        // The same bytes as text or blob, or split differently, are different rows.
        let ab = digest(&[Cell::Text("ab".into()), Cell::Text("c".into())]);
        let a_bc = digest(&[Cell::Text("a".into()), Cell::Text("bc".into())]);
        assert_ne!(ab, a_bc);
        assert_ne!(
            digest(&[Cell::Text("x".into())]),
            digest(&[Cell::Blob(b"x".to_vec())])
        );
        assert_ne!(digest(&[Cell::Int(1)]), digest(&[Cell::Real(1.0)]));
        assert_ne!(digest(&[Cell::Null]), digest(&[Cell::Int(0)]));
    }

    #[test]
    fn numerics_read_as_integers_or_reals() {
        // 12345678 = [1234, 5678], weight 1; -0.5 = [5000], weight -1, scale 1.
        let raw = |words: &[u16]| {
            words
                .iter()
                .flat_map(|w| w.to_be_bytes())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            numeric(&raw(&[2, 1, 0, 0, 1234, 5678])).unwrap(),
            Cell::Int(12_345_678)
        );
        assert_eq!(
            numeric(&raw(&[1, 0xFFFF, 0x4000, 1, 5000])).unwrap(),
            Cell::Real(-0.5)
        );
        assert_eq!(numeric(&raw(&[0, 0, 0, 0])).unwrap(), Cell::Int(0));
        assert_eq!(
            numeric(&raw(&[1, 2, 0, 0, 7])).unwrap(),
            Cell::Int(700_000_000)
        );
        assert!(numeric(&raw(&[2, 0, 0])).is_err());
    }

    #[test]
    fn a_value_that_does_not_fit_its_column_is_an_error() {
        let mut out = BytesMut::new();
        let Err(err) = ToSql::to_sql(&Cell::Text("x".into()), &Type::INT8, &mut out) else {
            panic!("text went into a BIGINT column");
        };
        assert_eq!(err.to_string(), "text does not fit a column of type int8");
        assert!(ToSql::to_sql(&Cell::Int(i64::MAX), &Type::INT4, &mut out).is_err());
        assert!(ToSql::to_sql(&Cell::Int(7), &Type::INT8, &mut out).is_ok());
    }
}
