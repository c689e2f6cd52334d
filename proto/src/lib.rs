//! Generated gRPC types and clients/servers for every Créneau service, plus
//! the file descriptor sets their reflection endpoints serve.
#![forbid(unsafe_code)]

macro_rules! package {
    ($module:ident, $package:literal, $descriptor:literal) => {
        pub mod $module {
            pub mod v1 {
                tonic::include_proto!($package);
                /// Encoded `FileDescriptorSet` for gRPC reflection.
                pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/", $descriptor));
            }
        }
    };
}

package!(eligibility, "creneau.eligibility.v1", "eligibility_descriptor.bin");
package!(centre_directory, "creneau.centre_directory.v1", "centre_directory_descriptor.bin");
package!(slot_inventory, "creneau.slot_inventory.v1", "slot_inventory_descriptor.bin");
package!(notification, "creneau.notification.v1", "notification_descriptor.bin");
package!(operations, "creneau.operations.v1", "operations_descriptor.bin");

impl notification::v1::event::Kind {
    /// The event's name, as outboxes and logs record it.
    pub fn name(&self) -> &'static str {
        use notification::v1::event::Kind;
        match self {
            Kind::BookingConfirmed(_) => "booking.confirmed",
            Kind::BookingCancelled(_) => "booking.cancelled",
            Kind::BookingMoved(_) => "booking.moved",
        }
    }

    /// The booking the event is about.
    pub fn reference(&self) -> &str {
        use notification::v1::event::Kind;
        match self {
            Kind::BookingConfirmed(e) => &e.reference,
            Kind::BookingCancelled(e) => &e.reference,
            Kind::BookingMoved(e) => &e.reference,
        }
    }
}
