from django import forms


class LetterForm(forms.Form):
    letter = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 18}),
        required=False,
        max_length=50_000,
        label="Medical-necessity letter",
    )


class AppealForm(forms.Form):
    letter = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 14}), max_length=50_000, label="Appeal letter"
    )


class CancelForm(forms.Form):
    reason = forms.CharField(required=False, max_length=500)


class AttachmentForm(forms.Form):
    file = forms.FileField()


class OpenForm(forms.Form):
    # Posted by the "Open PA case" button of the patient page's prescription list (a hidden
    # field, never a box a person types an id into).
    prescription = forms.IntegerField(min_value=1, widget=forms.HiddenInput)


class ReviewForm(forms.Form):
    verdict = forms.ChoiceField(choices=[("ok", "Correct"), ("error", "Error")])
    note = forms.CharField(required=False, max_length=300)
