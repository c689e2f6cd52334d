//! The search benchmark: N centres imported in the national file's format
//! (clustered around real French postcodes), slots for every centre, then
//! the gateway's HTTP API under load: searches by postcode, coordinates,
//! commune and department; a mix of searches with every radius, filter,
//! order and page; slot lists of centres drawn from all of them.
//!
//! nginx serving the gateway's own answers from files, driven by the same
//! client at the same concurrency, is the baseline each rate is divided
//! by: what the machine can answer over HTTP when nothing is computed.
//! centre-directory runs as a process of its own, so its resident memory
//! is printed once the data is in and again after the load.

mod data;
mod directory;
mod load;
mod nginx;

use std::collections::HashSet;
use std::time::Instant;

use anyhow::Context;
use creneau::{Databases, Platform, PlatformConfig};
use creneau_proto::centre_directory::v1::{ImportCentresRequest, centre_directory_client::CentreDirectoryClient};
use sea_orm::{ConnectionTrait, Database};

use data::Place;
use directory::{DirectoryProcess, Memory};
use nginx::Nginx;

#[derive(Debug, clap::Args)]
pub struct Options {
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres: String,
    #[arg(long, default_value_t = 10_000)]
    centres: usize,
    /// Requests in each run (each kind of query, the mix, slot lists, nginx).
    #[arg(long, default_value_t = 2_000)]
    queries: usize,
    /// Concurrent clients, for the gateway and nginx alike.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Keep centre-directory inside the bench's process with the rest of
    /// the platform; memory is then that of the whole process.
    #[arg(long)]
    directory_in_process: bool,
    /// Run this service instead of the benchmark: how the bench starts
    /// centre-directory as a process of its own.
    #[arg(long, hide = true)]
    serve: Option<String>,
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    if let Some(service) = &o.serve {
        return directory::serve(service.clone());
    }
    // Before minutes of import, not after.
    nginx::binary()?;
    let o = &o;
    super::on_scratch_database(&o.postgres, |url| async move { bench(o, &url).await }).await
}

async fn bench(o: &Options, url: &str) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut platform =
        Platform::start(PlatformConfig::new(Databases::Shared(url.to_owned()), dir.path().join("maildir"))).await?;
    let directory = if o.directory_in_process {
        None
    } else {
        let log = dir.path().join("centre-directory.log");
        Some(DirectoryProcess::replace(&mut platform, url, &log).await?)
    };
    let result = measure(o, url, &platform, directory.as_ref()).await;
    let stopped = platform.stop().await;
    let directory_stopped = match directory {
        Some(directory) => directory.stop().await,
        None => Ok(()),
    };
    result?;
    stopped?;
    directory_stopped
}

/// Prints centre-directory's memory, or the bench process's when the
/// directory shares it.
fn print_memory(directory: Option<&DirectoryProcess>, when: &str) -> anyhow::Result<()> {
    match directory {
        Some(directory) => println!("centre-directory (own process), {when}: {}", directory.memory()?),
        None => println!(
            "whole platform process (every service and the load generator), {when}: {}",
            Memory::of("/proc/self/status")?
        ),
    }
    Ok(())
}

async fn measure(
    o: &Options,
    url: &str,
    platform: &Platform,
    directory: Option<&DirectoryProcess>,
) -> anyhow::Result<()> {
    let places = data::places();
    let began = Instant::now();
    let mut client = CentreDirectoryClient::new(creneau_kit::client::channel(&platform.grpc_url("centre-directory"))?);
    let mut report = creneau_proto::centre_directory::v1::ImportCentresResponse::default();
    for csv in data::national_files(&places, o.centres, 5_000) {
        let part = client
            .import_centres(ImportCentresRequest {
                csv: csv.into_bytes(),
                default_vaccines: vec!["pfizer".into()],
                all_or_nothing: true,
            })
            .await?
            .into_inner();
        report.created += part.created;
        report.rejected.extend(part.rejected);
    }
    println!(
        "search benchmark: {} centres imported in {:.1} s ({} rejected), {} requests a run, {} clients",
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
    let centre_ids: Vec<String> = db
        .query_all_raw(sea_orm::Statement::from_string(db.get_database_backend(), "SELECT id FROM centres ORDER BY id"))
        .await?
        .iter()
        .map(|row| row.try_get::<String>("", "id"))
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(!centre_ids.is_empty(), "no centre was imported");
    let began = Instant::now();
    availability_arrives(&mut client, &centre_ids[0]).await?;
    println!("availability of every centre streamed to the directory in {:.1} s", began.elapsed().as_secs_f64());
    print_memory(directory, "data loaded")?;

    let http = load::client(o.clients)?;
    let base = platform.gateway_url();
    let (search_answer, centres_in_answer) = typical_search(&http, &base, &places).await?;
    let slot_list = format!("{base}/api/v1/centres/{}/slots?days=7", centre_ids[0]);
    let slot_answer = http.get(&slot_list).send().await?.error_for_status()?.bytes().await?.to_vec();
    println!(
        "nginx serves the same bytes as the gateway: a search answer of {} centres ({} bytes), \
         a slot list ({} bytes)",
        centres_in_answer,
        search_answer.len(),
        slot_answer.len()
    );

    // nginx first, alone, then stopped: the gateway's runs do not share
    // the machine with it.
    let files = [("search.json", search_answer.as_slice()), ("slots.json", slot_answer.as_slice())];
    let nginx = Nginx::start(&files).await?;
    load::warm(&http, &nginx.base, "/search.json", o.clients).await?;
    let nginx_search = load::drive(&http, &nginx.base, &vec!["/search.json".to_owned(); o.queries], o.clients).await?;
    let nginx_slots = load::drive(&http, &nginx.base, &vec!["/slots.json".to_owned(); o.queries], o.clients).await?;
    drop(nginx);

    let mixed = data::mixed(&places, o.queries);
    let slot_lists = data::slot_lists(&centre_ids, o.queries);
    println!(
        "mixed searches: {} different of {}; slot lists: {} different centres",
        mixed.iter().collect::<HashSet<_>>().len(),
        mixed.len(),
        slot_lists.iter().collect::<HashSet<_>>().len()
    );
    load::warm(&http, &base, "/healthz", o.clients).await?;
    println!();
    load::header();
    load::row("nginx, search answer", &nginx_search, nginx_search.per_s);
    for (label, paths) in data::per_kind(&places, o.queries) {
        load::row(label, &load::drive(&http, &base, &paths, o.clients).await?, nginx_search.per_s);
    }
    load::row("search, mixed", &load::drive(&http, &base, &mixed, o.clients).await?, nginx_search.per_s);
    load::row("nginx, slot list", &nginx_slots, nginx_slots.per_s);
    load::row("slot lists, 7 days", &load::drive(&http, &base, &slot_lists, o.clients).await?, nginx_slots.per_s);
    println!();
    print_memory(directory, "after the load")
}

/// Waits until the directory shows the slots just written: they reach it
/// through slot-inventory's stream, every centre in the same update.
async fn availability_arrives(
    client: &mut CentreDirectoryClient<creneau_kit::client::GrpcChannel>,
    centre: &str,
) -> anyhow::Result<()> {
    use creneau_proto::centre_directory::v1::GetCentreRequest;
    let began = Instant::now();
    while began.elapsed() < std::time::Duration::from_secs(300) {
        let found = client.get_centre(GetCentreRequest { id: centre.to_owned() }).await?.into_inner();
        if found.available_slots_7d > 0 {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("the directory did not show the slots within 5 minutes")
}

/// A postcode search's answer with a full page of 20 centres, the size
/// most searches return; the fullest found when none has 20.
async fn typical_search(http: &reqwest::Client, base: &str, places: &[Place]) -> anyhow::Result<(Vec<u8>, usize)> {
    let mut fullest: (Vec<u8>, usize) = (Vec::new(), 0);
    for place in places {
        let url = format!("{base}/api/v1/centres?postcode={}&radius_km=30&limit=20", place.postcode);
        let body = http.get(&url).send().await?.error_for_status()?.bytes().await?;
        let answer: serde_json::Value = serde_json::from_slice(&body).with_context(|| format!("{url}: not JSON"))?;
        let centres = answer["centres"].as_array().map_or(0, Vec::len);
        if centres > fullest.1 {
            fullest = (body.to_vec(), centres);
        }
        if centres == 20 {
            break;
        }
    }
    anyhow::ensure!(fullest.1 > 0, "no postcode search found any centre");
    Ok(fullest)
}
