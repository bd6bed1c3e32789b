from django import forms

from pharmacy.interop.ncpdp import DENIAL_REASON_CODES


class ApproveForm(forms.Form):
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    quantity = forms.DecimalField(required=False, min_value=0, decimal_places=3)
    days_supply = forms.IntegerField(required=False, min_value=1)
    refills = forms.IntegerField(required=False, min_value=0)


class DenyForm(forms.Form):
    reason_code = forms.ChoiceField(choices=sorted(DENIAL_REASON_CODES.items()), initial="AF",
                                    label="NCPDP denial reason")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), label="Reason (required)")


class ForwardForm(forms.Form):
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Note to the prescriber")
