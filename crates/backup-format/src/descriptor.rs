//! Schema descriptors as a backup stores them.
//!
//! A backup carries the schema consistent with its data. The backup system
//! needs only a few facts about each object — its id, kind, name, parents,
//! key spans and dependencies — to plan spans, resolve names, check
//! dependencies and rekey on restore. Everything else (columns, indexes,
//! privileges, the host's own encoding) travels as an opaque `payload` that
//! only the host database interprets.

/// A descriptor id, unique within one cluster.
pub type DescriptorId = u64;

/// What kind of schema object a descriptor describes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum DescriptorKind {
    /// A database.
    Database,
    /// A schema inside a database.
    Schema,
    /// A table (with its indexes).
    Table,
    /// A view.
    View,
    /// A sequence.
    Sequence,
    /// A user-defined type (an enum).
    Type,
}

impl DescriptorKind {
    /// The lower-case name SQL output uses (`table`, `database`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            DescriptorKind::Database => "database",
            DescriptorKind::Schema => "schema",
            DescriptorKind::Table => "table",
            DescriptorKind::View => "view",
            DescriptorKind::Sequence => "sequence",
            DescriptorKind::Type => "type",
        }
    }

    /// Inverse of [`DescriptorKind::as_str`].
    pub fn parse(s: &str) -> Option<DescriptorKind> {
        Some(match s {
            "database" => DescriptorKind::Database,
            "schema" => DescriptorKind::Schema,
            "table" => DescriptorKind::Table,
            "view" => DescriptorKind::View,
            "sequence" => DescriptorKind::Sequence,
            "type" => DescriptorKind::Type,
            _ => return None,
        })
    }
}

/// Why one object depends on another.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum DependencyKind {
    /// A foreign key references the other table.
    ForeignKey,
    /// A column default uses the sequence.
    Sequence,
    /// A view reads the other object.
    ViewSource,
    /// A column has the user-defined type.
    Type,
}

/// An edge from the object that holds it to the object it needs.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Dependency {
    /// The object depended on.
    pub id: DescriptorId,
    /// Why.
    pub kind: DependencyKind,
}

/// One schema object as of the backup's end time.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Descriptor {
    /// Cluster-unique id.
    pub id: DescriptorId,
    /// What it is.
    pub kind: DescriptorKind,
    /// Its name (unqualified).
    pub name: String,
    /// The database it lives in (0 for a database).
    pub parent_id: DescriptorId,
    /// The schema it lives in (0 for databases and schemas).
    pub parent_schema_id: DescriptorId,
    /// Key spans holding its data (tables and sequences; empty otherwise).
    pub spans: Vec<crate::Span>,
    /// Objects it needs.
    pub dependencies: Vec<Dependency>,
    /// Whether its data (not its schema) is left out of backups.
    pub exclude_data_from_backup: bool,
    /// The host's own encoding of the full descriptor.
    pub payload: Vec<u8>,
}
