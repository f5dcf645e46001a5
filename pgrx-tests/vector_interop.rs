//! pgvector's `vector` crossing into and out of Rust: NULLs, every storage form a value can
//! arrive in (plain, 1-byte header, compressed, out-of-line), broken layouts and wrong types.

#[pgrx::pg_schema]
mod tests {
    use pgrx::pg_sys;
    use pgrx::prelude::*;
    use pgrx::FromDatum;

    use crate::pgvector::{vector_type_oid, Vector};

    /// A palloc'd varlena claiming `dim` dimensions and `unused`, holding `n_values` floats.
    fn raw_vector(dim: i16, unused: i16, n_values: usize) -> pg_sys::Datum {
        let total = pg_sys::VARHDRSZ + 4 + 4 * n_values;
        unsafe {
            let ptr = pg_sys::palloc0(total) as *mut u8;
            pgrx::varlena::set_varsize_4b(ptr.cast(), total as i32);
            let body = ptr.add(pg_sys::VARHDRSZ);
            std::ptr::copy_nonoverlapping(dim.to_ne_bytes().as_ptr(), body, 2);
            std::ptr::copy_nonoverlapping(unused.to_ne_bytes().as_ptr(), body.add(2), 2);
            for i in 0..n_values {
                let v = (i as f32 + 1.0).to_ne_bytes();
                std::ptr::copy_nonoverlapping(v.as_ptr(), body.add(4 + 4 * i), 4);
            }
            pg_sys::Datum::from(ptr)
        }
    }

    #[pg_test]
    fn sql_null_reaches_rust_as_none() {
        let v = unsafe {
            Vector::from_polymorphic_datum(pg_sys::Datum::from(0usize), true, vector_type_oid())
        };
        assert_eq!(v, None);
        let r = Spi::get_one::<f64>(
            "SELECT sponsorship.cosine_similarity(NULL::vector, '[1,2]'::vector)",
        )
        .unwrap();
        assert_eq!(r, None, "a strict function returns NULL for a NULL vector");
    }

    #[pg_test]
    fn a_well_formed_datum_decodes_to_its_values() {
        let v = unsafe {
            Vector::from_polymorphic_datum(raw_vector(3, 0, 3), false, vector_type_oid())
        };
        assert_eq!(v, Some(Vector(vec![1.0, 2.0, 3.0])));
    }

    #[pg_test]
    fn vectors_round_trip_through_sql_arguments_and_results() {
        let text =
            Spi::get_one::<String>("SELECT sponsorship.normalize_embedding('[3,4]'::vector)::text")
                .unwrap()
                .unwrap();
        assert_eq!(text, "[0.6,0.8]");
        let typ = Spi::get_one::<String>(
            "SELECT pg_typeof(sponsorship.normalize_embedding('[1,0]'))::text",
        )
        .unwrap()
        .unwrap();
        assert_eq!(typ, "vector");
        let cos = Spi::get_one::<f64>("SELECT sponsorship.cosine_similarity('[1,2,3]', '[2,4,6]')")
            .unwrap()
            .unwrap();
        assert!((cos - 1.0).abs() < 1e-12);
    }

    #[pg_test]
    fn the_zero_vector_has_no_direction() {
        let n = Spi::get_one::<bool>("SELECT sponsorship.normalize_embedding('[0,0]') IS NULL")
            .unwrap();
        assert_eq!(n, Some(true));
        let c =
            Spi::get_one::<f64>("SELECT sponsorship.cosine_similarity('[0,0]', '[1,1]')").unwrap();
        assert_eq!(c, None);
    }

    #[pg_test]
    fn short_header_values_from_a_table_are_read() {
        Spi::run("CREATE TABLE short_vec (v vector); INSERT INTO short_vec VALUES ('[1,2,3]')")
            .unwrap();
        // 8 header bytes + 12 data bytes stored with a 1-byte varlena header: 17 bytes.
        let size = Spi::get_one::<i32>("SELECT pg_column_size(v) FROM short_vec")
            .unwrap()
            .unwrap();
        assert_eq!(size, 17, "the stored value should have a 1-byte header");
        let dims =
            Spi::get_one::<i32>("SELECT sponsorship.embedding_dims(v) FROM short_vec").unwrap();
        assert_eq!(dims, Some(3));
        let out = Spi::get_one::<String>(
            "SELECT sponsorship.normalize_embedding(v)::text FROM short_vec",
        )
        .unwrap()
        .unwrap();
        assert_eq!(out, "[0.26726124,0.5345225,0.80178374]");
    }

    #[pg_test]
    fn compressed_values_are_decompressed() {
        Spi::run(
            "CREATE TABLE packed_vec (v vector);
             ALTER TABLE packed_vec ALTER COLUMN v SET STORAGE EXTENDED;
             INSERT INTO packed_vec SELECT array_fill(0.5::real, ARRAY[3000])::vector",
        )
        .unwrap();
        let compressed =
            Spi::get_one::<bool>("SELECT pg_column_compression(v) IS NOT NULL FROM packed_vec")
                .unwrap();
        assert_eq!(
            compressed,
            Some(true),
            "the stored value should be compressed"
        );
        let dims =
            Spi::get_one::<i32>("SELECT sponsorship.embedding_dims(v) FROM packed_vec").unwrap();
        assert_eq!(dims, Some(3000));
        let cos = Spi::get_one::<f64>("SELECT sponsorship.cosine_similarity(v, v) FROM packed_vec")
            .unwrap()
            .unwrap();
        assert!((cos - 1.0).abs() < 1e-9);
    }

    #[pg_test]
    fn out_of_line_values_are_fetched() {
        Spi::run(
            "CREATE TABLE toasted_vec (v vector);
             ALTER TABLE toasted_vec ALTER COLUMN v SET STORAGE EXTERNAL;
             INSERT INTO toasted_vec SELECT array_fill(0.25::real, ARRAY[2000])::vector",
        )
        .unwrap();
        let toast = Spi::get_one::<String>(
            "SELECT reltoastrelid::regclass::text FROM pg_class WHERE relname = 'toasted_vec'",
        )
        .unwrap()
        .unwrap();
        let chunks = Spi::get_one::<i64>(&format!("SELECT count(*) FROM {toast}"))
            .unwrap()
            .unwrap();
        assert!(
            chunks >= 4,
            "the 8 kB value should live in {toast}, found {chunks} chunks"
        );
        let uncompressed =
            Spi::get_one::<bool>("SELECT pg_column_compression(v) IS NULL FROM toasted_vec")
                .unwrap();
        assert_eq!(uncompressed, Some(true), "stored uncompressed");
        let dims =
            Spi::get_one::<i32>("SELECT sponsorship.embedding_dims(v) FROM toasted_vec").unwrap();
        assert_eq!(dims, Some(2000));
    }

    #[pg_test(error = "vector declares 3 dimensions (16 payload bytes) but holds 12 bytes")]
    fn a_size_that_disagrees_with_dim_is_rejected() {
        unsafe { Vector::from_polymorphic_datum(raw_vector(3, 0, 2), false, vector_type_oid()) };
    }

    #[pg_test(error = "vector header field `unused` is 5, expected 0: not a pgvector vector")]
    fn a_non_zero_unused_field_is_rejected() {
        unsafe { Vector::from_polymorphic_datum(raw_vector(2, 5, 2), false, vector_type_oid()) };
    }

    #[pg_test(error = "vector declares 0 dimensions, which is outside 1..=16000")]
    fn a_zero_dimension_is_rejected() {
        unsafe { Vector::from_polymorphic_datum(raw_vector(0, 0, 0), false, vector_type_oid()) };
    }

    #[pg_test(error = "expected pgvector's type \"vector\", got type \"text\"")]
    fn a_datum_of_another_type_is_rejected() {
        unsafe { Vector::from_polymorphic_datum(raw_vector(1, 0, 1), false, pg_sys::TEXTOID) };
    }

    #[pg_test(error = "different vector dimensions 2 and 3")]
    fn different_dimensions_are_an_error() {
        Spi::run("SELECT sponsorship.cosine_similarity('[1,2]', '[1,2,3]')").unwrap();
    }

    #[pg_test]
    fn the_vector_type_is_found_through_the_vector_extension() {
        let expected = Spi::get_one::<pg_sys::Oid>("SELECT 'vector'::regtype::oid")
            .unwrap()
            .unwrap();
        assert_eq!(vector_type_oid(), expected);
    }
}
