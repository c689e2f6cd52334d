//! Importing France's open-data file of vaccination sites.

use creneau_proto::centre_directory::v1::{
    GetCentreRequest, ImportCentresRequest, SearchCentresRequest, search_centres_request::Near,
};
use tonic::Code;

use crate::helpers::TestApp;

const SAMPLE: &[u8] = include_bytes!("../../data/centres-vaccination-sample.csv");

fn request(all_or_nothing: bool) -> ImportCentresRequest {
    ImportCentresRequest { csv: SAMPLE.to_vec(), default_vaccines: vec!["pfizer".into()], all_or_nothing }
}

async fn the_sample_imports_with_a_report_and_importing_again_changes_nothing(app: TestApp) {
    let mut client = app.client.clone();
    let first = client.import_centres(request(false)).await.unwrap().into_inner();
    assert_eq!((first.created, first.updated, first.unchanged), (10, 0, 0));
    let report: Vec<(u32, &str)> = first.rejected.iter().map(|r| (r.line, r.reason.as_str())).collect();
    assert_eq!(
        report,
        [
            (11, "missing name (nom)"),
            (12, "bad coordinates (lat_coor1, long_coor1)"),
            (13, "bad coordinates (lat_coor1, long_coor1)")
        ]
    );
    let again = client.import_centres(request(false)).await.unwrap().into_inner();
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 10));

    // Imported centres are searchable; the closed one is not.
    let found = client
        .search_centres(SearchCentresRequest {
            near: Some(Near::Postcode("57000".into())),
            radius_km: 10.0,
            vaccine: None,
            limit: 20,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = found.centres.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["gid-1001", "gid-1002"], "gid-1013 closed on 30 June 2021");
    let arsenal = client.get_centre(GetCentreRequest { id: "gid-1001".into() }).await.unwrap().into_inner();
    assert_eq!(arsenal.insee.as_deref(), Some("57463"));
    assert_eq!(arsenal.address, "3 Avenue Ney");
    assert_eq!(arsenal.vaccines, ["pfizer"]);
    let closed = client.get_centre(GetCentreRequest { id: "gid-1013".into() }).await.unwrap_err();
    assert_eq!(closed.code(), Code::NotFound);
}

async fn all_or_nothing_imports_nothing_when_a_row_is_bad(app: TestApp) {
    let outcome = app.client.clone().import_centres(request(true)).await.unwrap().into_inner();
    assert_eq!((outcome.created, outcome.rejected.len()), (0, 3));
    let err = app.client.clone().get_centre(GetCentreRequest { id: "gid-1001".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

async fn a_file_of_another_shape_is_refused(app: TestApp) {
    let err = app
        .client
        .clone()
        .import_centres(ImportCentresRequest {
            csv: b"name,lat,lon\nx,1,2\n".to_vec(),
            default_vaccines: vec!["pfizer".into()],
            all_or_nothing: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("header"), "{}", err.message());
    let no_vaccine = app
        .client
        .clone()
        .import_centres(ImportCentresRequest { csv: SAMPLE.to_vec(), default_vaccines: vec![], all_or_nothing: false })
        .await
        .unwrap_err();
    assert_eq!(no_vaccine.code(), Code::InvalidArgument);
}

creneau_kit::backend_tests!(crate::helpers::spawn_app;
    the_sample_imports_with_a_report_and_importing_again_changes_nothing,
    all_or_nothing_imports_nothing_when_a_row_is_bad,
    a_file_of_another_shape_is_refused,
);
