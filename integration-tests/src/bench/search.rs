//! The search benchmark: N centres imported in the national file's format
//! (clustered around real French postcodes), slots for every centre, then
//! searches through the gateway's HTTP API by postcode, coordinates,
//! commune and department, with p50/p99 per kind of query.

use std::time::{Duration, Instant};

use anyhow::Context;
use creneau::{Databases, Platform, PlatformConfig};
use creneau_proto::centre_directory::v1::{ImportCentresRequest, centre_directory_client::CentreDirectoryClient};
use rand::Rng;
use sea_orm::{ConnectionTrait, Database};

use super::stats::{Latency, ms};

#[derive(Debug, clap::Args)]
pub struct Options {
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres: String,
    #[arg(long, default_value_t = 10_000)]
    centres: usize,
    /// Searches of each kind.
    #[arg(long, default_value_t = 500)]
    queries: usize,
    #[arg(long, default_value_t = 16)]
    clients: usize,
}

const POSTCODES: &str = include_str!("../../../migrations/data/postcodes.csv");
const HEADER: &str = "gid;nom;arrete_pref_numero;xy_precis;id_adr;adr_num;adr_voie;com_cp;com_insee;com_nom;lat_coor1;long_coor1;structure_siren;structure_type;structure_rais;structure_num;structure_voie;structure_cp;structure_insee;structure_com;_userid_creation;_userid_modification;_edit_datemaj;lieu_accessibilite;rdv_lundi;rdv_mardi;rdv_mercredi;rdv_jeudi;rdv_vendredi;rdv_samedi;rdv_dimanche;rdv;date_fermeture;date_ouverture;rdv_site_web;rdv_tel;rdv_tel2;rdv_modalites;rdv_consultation_prevaccination;centre_svi_repondeur;centre_fermeture;reserve_professionels_sante";

struct Place {
    postcode: String,
    insee: String,
    city: String,
    department: String,
    lat: f64,
    lon: f64,
}

fn places() -> Vec<Place> {
    POSTCODES
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(';').collect();
            Some(Place {
                postcode: f.first()?.to_string(),
                insee: f.get(1)?.to_string(),
                city: f.get(2)?.to_string(),
                department: f.get(3)?.to_string(),
                lat: f.get(4)?.parse().ok()?,
                lon: f.get(5)?.parse().ok()?,
            })
        })
        .collect()
}

fn national_file(places: &[Place], centres: usize) -> String {
    let mut rng = rand::rng();
    let mut csv = format!("{HEADER}\n");
    for gid in 1..=centres {
        let p = &places[rng.random_range(0..places.len())];
        let (lat, lon) = (p.lat + rng.random_range(-0.15..0.15), p.lon + rng.random_range(-0.2..0.2));
        csv.push_str(&format!(
            "{gid};Centre de vaccination n°{gid};;t;;{n};Rue de la Santé;{cp};{insee};{city};{lat:.5};{lon:.5};;;;;;;;;1;1;;oui;;;;;;;;t;;2021-01-18;;0{n:09};;;f;f;f;f\n",
            n = gid % 100,
            cp = p.postcode,
            insee = p.insee,
            city = p.city,
        ));
    }
    csv
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    let name = format!("creneau_bench_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(format!("{}/postgres", o.postgres)).await.context("connecting to PostgreSQL")?;
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await?;
    let url = format!("{}/{name}", o.postgres);
    let result = bench(&o, &url).await;
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await?;
    result
}

async fn bench(o: &Options, url: &str) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let platform =
        Platform::start(PlatformConfig::new(Databases::Shared(url.to_owned()), dir.path().join("maildir"))).await?;
    let places = places();
    let csv = national_file(&places, o.centres);
    let began = Instant::now();
    let mut directory =
        CentreDirectoryClient::new(creneau_kit::client::channel(&platform.grpc_url("centre-directory"))?);
    let report = directory
        .import_centres(ImportCentresRequest {
            csv: csv.into_bytes(),
            default_vaccines: vec!["pfizer".into()],
            all_or_nothing: true,
        })
        .await?
        .into_inner();
    println!(
        "search benchmark: {} centres imported in {:.1} s ({} rejected), {} searches of each kind, {} clients",
        report.created,
        began.elapsed().as_secs_f64(),
        report.rejected.len(),
        o.queries,
        o.clients
    );
    // Four slots a day for a week at every centre.
    let db = Database::connect(url).await?;
    db.execute_unprepared(
        "INSERT INTO slots (id, centre_id, vaccine, starts_at, ends_at, capacity, booked, created_at, status) \
         SELECT c.id || '-' || d || '-' || h, c.id, 'pfizer', \
                date_trunc('day', now()) + (d || ' days')::interval + ((8 + h) || ' hours')::interval, \
                date_trunc('day', now()) + (d || ' days')::interval + ((8 + h) || ' hours 15 minutes')::interval, \
                5, 0, now(), 'open' \
         FROM centres c, generate_series(1, 7) d, generate_series(0, 3) h",
    )
    .await?;
    db.execute_unprepared("ANALYZE").await?;

    let http = reqwest::Client::builder().pool_max_idle_per_host(o.clients).build()?;
    let base = platform.gateway_url();
    type Query = Box<dyn Fn(&Place) -> String + Send + Sync>;
    let kinds: [(&str, Query); 4] = [
        ("postcode, 30 km", Box::new(|p: &Place| format!("postcode={}&radius_km=30", p.postcode))),
        ("coordinates, 10 km", Box::new(|p: &Place| format!("lat={}&lon={}&radius_km=10", p.lat, p.lon))),
        (
            "commune (name)",
            Box::new(|p: &Place| format!("commune={}", p.city.replace(' ', "%20").replace('\'', "%27"))),
        ),
        ("department, earliest", Box::new(|p: &Place| format!("department={}&sort=earliest", p.department))),
    ];
    println!("{:<24} {:>10} {:>10} {:>10} {:>12}", "query", "p50", "p99", "max", "queries/s");
    for (label, query) in &kinds {
        let urls: Vec<String> = (0..o.queries)
            .map(|i| format!("{base}/api/v1/centres?{}", query(&places[(i * 31) % places.len()])))
            .collect();
        let began = Instant::now();
        let chunks: Vec<Vec<String>> = urls.chunks(o.queries.div_ceil(o.clients)).map(|c| c.to_vec()).collect();
        let tasks: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let http = http.clone();
                tokio::spawn(async move {
                    let mut samples = Vec::new();
                    for url in chunk {
                        let at = Instant::now();
                        let response = http.get(&url).send().await?;
                        anyhow::ensure!(response.status().is_success(), "{url}: {}", response.status());
                        response.bytes().await?;
                        samples.push(at.elapsed());
                    }
                    anyhow::Ok(samples)
                })
            })
            .collect();
        let mut samples: Vec<Duration> = Vec::new();
        for task in tasks {
            samples.extend(task.await??);
        }
        let rate = samples.len() as f64 / began.elapsed().as_secs_f64();
        let l = Latency::of(samples);
        println!("{label:<24} {:>10} {:>10} {:>10} {:>12.0}", ms(l.p50), ms(l.p99), ms(l.max), rate);
    }
    platform.stop().await
}
