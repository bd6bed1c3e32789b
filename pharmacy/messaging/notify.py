"""Patient messages: sent once per event, only with consent and by the contact preference,
with no PHI beyond the first name and the drug name (HIPAA minimum necessary)."""
from __future__ import annotations

from pharmacy.models import Patient

from .outbox import outbox_enqueue


def patient_message_enqueue(*, patient: Patient, event_key: str, text: str, subject: str = "", related=None):
    """Queue a message to the patient (or an animal's owner). Returns the OutboxMessage, or None
    with no message when the patient has not consented or has no usable contact."""
    if not patient.consent_to_messages:
        return None
    preference = patient.contact_preference
    if preference == "sms" and patient.phone:
        transport, destination = "sms", patient.phone
    elif preference == "email" and patient.email:
        transport, destination = "email", patient.email
    else:
        return None  # phone calls and "none" are handled by staff, not by the system
    return outbox_enqueue(kind=f"{transport}:{event_key.split(':')[0]}", payload=text, transport=transport,
                          destination=destination, subject=subject or "Message from your pharmacy",
                          content_type="text/plain", dedupe_key=f"patient-message:{event_key}", related=related,
                          reason=f"Patient message {event_key.split(':')[0]}")
