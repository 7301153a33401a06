//! The `ratecast-fetcher` binary's start-up contract: it refuses to run without MongoDB,
//! and a bad value stops it with one line and exit code 2.

use ratecast_testkit::binary::mongo_service;

const BIN: &str = env!("CARGO_BIN_EXE_ratecast-fetcher");

#[test]
fn without_mongo_connection_uri_it_refuses_to_start_with_one_line_and_exit_code_2() {
    mongo_service::refuses_to_start_without_a_mongo_uri(BIN);
}

#[test]
fn a_bad_value_stops_start_up_with_one_line_and_exit_code_2() {
    mongo_service::refuses_a_bad_value_of(BIN, "FETCHER_HTTP_PORT");
}

#[test]
fn a_malformed_mongo_uri_fails_at_once_with_the_cause() {
    mongo_service::fails_at_once_on_a_malformed_uri(BIN, "FETCHER_HTTP_PORT");
}
