package routing

import (
	"strings"
	"testing"
)

func TestLanguageDetector(t *testing.T) {
	d := NewLanguageDetector()
	tests := []struct {
		text, want string
	}{
		{"Hello, I have not received my order yet. Could you please check where it is?", "en"},
		{"Guten Tag, ich habe eine Frage zu meiner Rechnung vom letzten Monat.", "de"},
		{"Bonjour, je n'ai pas reçu ma commande passée la semaine dernière. Pouvez-vous vérifier où elle se trouve ?", "fr"},
		{"Hallo, ik heb mijn bestelling nog niet ontvangen. Kunt u nagaan waar die is?", "nl"},
		{"Ciao, non ho ancora ricevuto il mio ordine. Potete controllare dove si trova?", "it"},
		{"Dzień dobry, nie otrzymałem jeszcze mojego zamówienia. Czy mogą Państwo sprawdzić?", "pl"},
		{"Hej, jag har inte fått min beställning än. Kan ni kolla var den är?", "sv"},
		// Quoted lines do not count: the customer wrote German under an English quote.
		{"> Dear customer, thank you for contacting us about your order.\n> We will be in touch.\nVielen Dank, aber die Lieferung ist immer noch nicht angekommen.", "de"},
		{"", ""},
		{"Thanks!", ""},
		{"Invoice 12345", ""},
		{"Привет, как дела? Я не получил свой заказ, помогите пожалуйста.", ""}, // not one of ours
		{"您好，我还没有收到我的订单，请帮我查一下。", ""},
	}
	for _, tt := range tests {
		if got := d.Detect(tt.text); got != tt.want {
			t.Errorf("Detect(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestDetectSampleIsBounded(t *testing.T) {
	s, letters := detectSample(strings.Repeat("abc ", 2000))
	if n := len([]rune(s)); n != detectMaxRunes || letters != detectMaxRunes*3/4 {
		t.Errorf("sample of %d runes, %d letters", n, letters)
	}
}
