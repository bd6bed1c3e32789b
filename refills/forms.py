from django import forms

from pharmacy.interop.ncpdp import DENIAL_REASON_CODES


class ApproveForm(forms.Form):
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    quantity = forms.DecimalField(required=False, min_value=0, decimal_places=3)
    days_supply = forms.IntegerField(required=False, min_value=1)
    refills = forms.IntegerField(required=False, min_value=0)
    override_reason = forms.CharField(required=False, max_length=500, label="Override reason (pharmacist)",
                                      help_text="Only for an allergy conflict or a refill too soon, e.g. vacation "
                                                "supply.")


class DenyForm(forms.Form):
    reason_code = forms.ChoiceField(choices=sorted(DENIAL_REASON_CODES.items()), initial="AF",
                                    label="NCPDP denial reason")
    # One line: Enter sends the denial (the queue's keyboard flow: d, type the reason, Enter).
    reason = forms.CharField(widget=forms.TextInput(attrs={"data-key": "d", "autocomplete": "off"}),
                             label="Reason (required)", max_length=500)


class ForwardForm(forms.Form):
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Note to the prescriber")


class LinkAnswerForm(forms.Form):
    """The prescriber's answer on the signed-link page."""

    decision = forms.ChoiceField(choices=[("approve", "Approve as written"),
                                          ("approve_with_changes", "Approve with changes"),
                                          ("deny", "Deny"),
                                          ("new_prescription", "I will send a new prescription from my "
                                                               "EPCS-certified e-prescribing system")],
                                widget=forms.RadioSelect, initial="approve")
    quantity = forms.DecimalField(required=False, min_value=0, decimal_places=3)
    days_supply = forms.IntegerField(required=False, min_value=1, label="Days supply")
    refills = forms.IntegerField(required=False, min_value=0)
    note = forms.CharField(required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}),
                           label="Note to the pharmacy (optional)")
    reason_code = forms.ChoiceField(required=False, choices=sorted(DENIAL_REASON_CODES.items()), initial="AF",
                                    label="Denial reason")
    override_reason = forms.CharField(required=False, max_length=500, label="Reason to approve despite the allergy",
                                      widget=forms.Textarea(attrs={"rows": 2}))
    reason = forms.CharField(required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}),
                             label="Reason for denial")

    CHANGES = ("quantity", "days_supply", "refills")

    def __init__(self, *args, prescription=None, requested_refills=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.current = {}
        if prescription is not None:
            self.current = {"quantity": prescription.quantity, "days_supply": prescription.days_supply,
                            "refills": requested_refills if requested_refills is not None
                            else prescription.refills_authorized}
            for name, value in self.current.items():
                self.fields[name].initial = value

    def clean(self):
        data = super().clean()
        decision = data.get("decision")
        if decision == "deny" and not (data.get("reason") or "").strip():
            self.add_error(
                "reason",
                "Give a reason for the denial; the pharmacy receives it (the patient is asked to call the office).",
            )
        if decision == "approve_with_changes":
            # Only what differs from the prescription as written is a change.
            for name in self.CHANGES:
                if data.get(name) is not None and name in self.current and data[name] == self.current[name]:
                    data[name] = None
            if all(data.get(name) is None for name in self.CHANGES) and not self.errors:
                raise forms.ValidationError("Change the quantity, days supply or refills, or choose "
                                            "“Approve as written”.")
        else:
            for name in self.CHANGES:
                data[name] = None
        if decision not in ("approve", "approve_with_changes"):
            data["override_reason"] = ""
        return data


class IntakeAssignForm(forms.Form):
    """Triage: the prescription a patient message asks for — one of the candidates, or one of the
    prescriptions of a patient found by name and birth date (chosen, never typed as an id)."""

    prescription = forms.IntegerField(min_value=1)
    note = forms.CharField(required=False, max_length=500)

    def prescription_id(self) -> int:
        return self.cleaned_data["prescription"]


class IntakeDismissForm(forms.Form):
    reason = forms.CharField(
        max_length=500, widget=forms.TextInput(attrs={"placeholder": "e.g. not a refill; called back"})
    )
