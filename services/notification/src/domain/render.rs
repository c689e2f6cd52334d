use chrono::{DateTime, Datelike, Timelike, Utc};
use creneau_proto::notification::v1::{AppointmentInfo, Recipient, event::Kind};

use super::paris_local;

/// What the directory says of a centre, when it could be asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CentreDetails {
    pub name: String,
    pub address: String,
    pub postcode: String,
    pub city: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub channel: Channel,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub language: &'static str,
}

#[derive(Clone, Copy, PartialEq)]
enum Lang {
    Fr,
    En,
}

const DAYS_FR: [&str; 7] = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"];
const MONTHS_FR: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
const DAYS_EN: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn when(instant: &str, lang: Lang) -> String {
    let Ok(t) = DateTime::parse_from_rfc3339(instant) else {
        return instant.to_owned();
    };
    let local = paris_local(t.with_timezone(&Utc));
    let (weekday, month) = (local.weekday().num_days_from_monday() as usize, local.month0() as usize);
    match lang {
        Lang::Fr => format!(
            "{} {} {} {} à {:02}h{:02}",
            DAYS_FR[weekday],
            local.day(),
            MONTHS_FR[month],
            local.year(),
            local.hour(),
            local.minute()
        ),
        Lang::En => format!(
            "{}, {} {} {} at {:02}:{:02} (Paris time)",
            DAYS_EN[weekday],
            local.day(),
            MONTHS_EN[month],
            local.year(),
            local.hour(),
            local.minute()
        ),
    }
}

fn vaccine_label(code: &str) -> String {
    code.parse::<creneau_kit::vocab::Vaccine>().map(|v| v.label().to_owned()).unwrap_or_else(|_| code.to_owned())
}

fn appointment_lines(
    appointments: &[AppointmentInfo],
    centres: &dyn Fn(&str) -> Option<CentreDetails>,
    lang: Lang,
) -> String {
    let mut out = String::new();
    for a in appointments {
        let centre = centres(&a.centre_id)
            .map(|c| format!("{}, {}, {} {}", c.name, c.address, c.postcode, c.city))
            .unwrap_or_else(|| a.centre_id.clone());
        let (dose, centre_label) = match lang {
            Lang::Fr => (format!("Dose {}", a.dose), "Centre"),
            Lang::En => (format!("Dose {}", a.dose), "Centre"),
        };
        out.push_str(&format!(
            "{dose} : {} — {}\n{centre_label} : {centre}\n",
            when(&a.starts_at, lang),
            vaccine_label(&a.vaccine)
        ));
    }
    out
}

/// One message per event, to the citizen's email or, failing that, phone.
/// `None` when the recipient has no channel (the booking API forbids it).
pub fn render(kind: &Kind, centres: &dyn Fn(&str) -> Option<CentreDetails>) -> Option<Rendered> {
    let (recipient, reference) = match kind {
        Kind::BookingConfirmed(e) => (e.recipient.as_ref()?, &e.reference),
        Kind::BookingCancelled(e) => (e.recipient.as_ref()?, &e.reference),
        Kind::BookingMoved(e) => (e.recipient.as_ref()?, &e.reference),
    };
    let lang = if recipient.language == "en" { Lang::En } else { Lang::Fr };
    let (channel, to) = destination(recipient)?;
    let greeting = match lang {
        Lang::Fr => format!("Bonjour {} {},", recipient.first_name, recipient.last_name),
        Lang::En => format!("Hello {} {},", recipient.first_name, recipient.last_name),
    };
    let (subject, body) = match (kind, lang) {
        (Kind::BookingConfirmed(e), Lang::Fr) => (
            format!("Rendez-vous de vaccination confirmé — {reference}"),
            format!(
                "{greeting}\n\nVotre rendez-vous de vaccination est confirmé.\n\nRéférence : {reference}\n{}\n\
                 Pour consulter ou annuler ce rendez-vous, utilisez votre référence et ce code personnel :\n{}\n\n\
                 Ne communiquez ce code à personne.\n",
                appointment_lines(&e.appointments, centres, lang),
                e.secret
            ),
        ),
        (Kind::BookingConfirmed(e), Lang::En) => (
            format!("Vaccination appointment confirmed — {reference}"),
            format!(
                "{greeting}\n\nYour vaccination appointment is confirmed.\n\nReference: {reference}\n{}\n\
                 To view or cancel this appointment, use your reference and this personal code:\n{}\n\n\
                 Do not share this code with anyone.\n",
                appointment_lines(&e.appointments, centres, lang),
                e.secret
            ),
        ),
        (Kind::BookingCancelled(e), Lang::Fr) => (
            format!("Rendez-vous de vaccination annulé — {reference}"),
            format!(
                "{greeting}\n\nVotre rendez-vous de vaccination a été annulé{}.\n\nRéférence : {reference}\n{}\n\
                 Vous pouvez prendre un nouveau rendez-vous à tout moment.\n",
                e.reason.as_deref().map(|r| format!(" par le centre ({r})")).unwrap_or_default(),
                appointment_lines(&e.appointments, centres, lang)
            ),
        ),
        (Kind::BookingCancelled(e), Lang::En) => (
            format!("Vaccination appointment cancelled — {reference}"),
            format!(
                "{greeting}\n\nYour vaccination appointment has been cancelled{}.\n\nReference: {reference}\n{}\n\
                 You can book a new appointment at any time.\n",
                e.reason.as_deref().map(|r| format!(" by the centre ({r})")).unwrap_or_default(),
                appointment_lines(&e.appointments, centres, lang)
            ),
        ),
        (Kind::BookingMoved(e), Lang::Fr) => (
            format!("Rendez-vous de vaccination modifié — {reference}"),
            format!(
                "{greeting}\n\nVotre rendez-vous de vaccination a été déplacé{}.\n\nRéférence : {reference}\n\
                 Nouveau rendez-vous :\n{}\nAncien rendez-vous :\n{}",
                e.reason.as_deref().map(|r| format!(" par le centre ({r})")).unwrap_or_default(),
                appointment_lines(&e.appointments, centres, lang),
                appointment_lines(&e.previous, centres, lang)
            ),
        ),
        (Kind::BookingMoved(e), Lang::En) => (
            format!("Vaccination appointment moved — {reference}"),
            format!(
                "{greeting}\n\nYour vaccination appointment has been moved{}.\n\nReference: {reference}\n\
                 New appointment:\n{}\nPrevious appointment:\n{}",
                e.reason.as_deref().map(|r| format!(" by the centre ({r})")).unwrap_or_default(),
                appointment_lines(&e.appointments, centres, lang),
                appointment_lines(&e.previous, centres, lang)
            ),
        ),
    };
    Some(Rendered { channel, recipient: to, subject, body, language: if lang == Lang::En { "en" } else { "fr" } })
}

fn destination(recipient: &Recipient) -> Option<(Channel, String)> {
    let email = recipient.email.as_deref().filter(|e| !e.is_empty());
    let phone = recipient.phone.as_deref().filter(|p| !p.is_empty());
    match (email, phone) {
        (Some(email), _) => Some((Channel::Email, email.to_owned())),
        (None, Some(phone)) => Some((Channel::Sms, phone.to_owned())),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use creneau_proto::notification::v1::{BookingCancelled, BookingConfirmed, BookingMoved};

    use super::*;

    fn recipient(language: &str, email: Option<&str>, phone: Option<&str>) -> Recipient {
        Recipient {
            first_name: "Anne".into(),
            last_name: "Martin".into(),
            email: email.map(Into::into),
            phone: phone.map(Into::into),
            language: language.into(),
        }
    }

    fn appointment() -> AppointmentInfo {
        AppointmentInfo {
            dose: 1,
            centre_id: "metz-1".into(),
            vaccine: "pfizer".into(),
            starts_at: "2026-12-01T08:15:00+00:00".into(),
            ends_at: "2026-12-01T08:30:00+00:00".into(),
        }
    }

    fn centres(id: &str) -> Option<CentreDetails> {
        (id == "metz-1").then(|| CentreDetails {
            name: "Centre de vaccination de Metz".into(),
            address: "1 rue de Paris".into(),
            postcode: "57000".into(),
            city: "Metz".into(),
        })
    }

    #[test]
    fn confirmation_in_french_names_the_centre_the_time_and_the_code() {
        let kind = Kind::BookingConfirmed(BookingConfirmed {
            reference: "ABCD-EFGH".into(),
            secret: "s3cret".into(),
            recipient: Some(recipient("fr", Some("anne@example.fr"), None)),
            appointments: vec![appointment()],
        });
        let m = render(&kind, &centres).unwrap();
        assert_eq!(m.channel, Channel::Email);
        assert_eq!(m.recipient, "anne@example.fr");
        assert!(m.subject.contains("confirmé") && m.subject.contains("ABCD-EFGH"));
        assert!(m.body.contains("mardi 1 décembre 2026 à 09h15"), "{}", m.body);
        assert!(m.body.contains("Centre de vaccination de Metz, 1 rue de Paris, 57000 Metz"));
        assert!(m.body.contains("Pfizer-BioNTech"));
        assert!(m.body.contains("s3cret"));
    }

    #[test]
    fn cancellation_in_english_by_sms_when_there_is_no_email() {
        let kind = Kind::BookingCancelled(BookingCancelled {
            reference: "ABCD-EFGH".into(),
            recipient: Some(recipient("en", None, Some("+33612345678"))),
            appointments: vec![appointment()],
            reason: None,
        });
        let m = render(&kind, &|_| None).unwrap();
        assert_eq!(m.channel, Channel::Sms);
        assert_eq!(m.language, "en");
        assert!(m.subject.starts_with("Vaccination appointment cancelled"));
        assert!(m.body.contains("Tuesday, 1 December 2026 at 09:15"));
        assert!(m.body.contains("metz-1"));
    }

    #[test]
    fn a_move_by_the_centre_says_why_and_shows_both_times() {
        let mut later = appointment();
        later.starts_at = "2026-12-02T08:15:00+00:00".into();
        let kind = Kind::BookingMoved(BookingMoved {
            reference: "ABCD-EFGH".into(),
            recipient: Some(recipient("fr", Some("anne@example.fr"), None)),
            previous: vec![appointment()],
            appointments: vec![later],
            reason: Some("livraison de vaccins retardée".into()),
        });
        let m = render(&kind, &centres).unwrap();
        assert!(m.subject.contains("modifié"));
        assert!(m.body.contains("déplacé par le centre (livraison de vaccins retardée)"));
        assert!(m.body.contains("mercredi 2 décembre 2026 à 09h15"));
        assert!(m.body.contains("mardi 1 décembre 2026 à 09h15"));
    }
}
