package main

// minorUnits lists the ISO 4217 currencies whose minor unit is not 2
// decimal places, transcribed from ISO 4217 List One (the list the ISO 4217
// maintenance agency publishes); every other currency has 2. -1 stands for
// "N.A.": funds, precious metals and testing codes that have no minor unit.
//
// iso-codes carries codes, numbers and names but not minor units, so this
// table is kept by hand: gen fails if it names a code iso-codes does not
// list, and a new currency with other than 2 decimals must be added here.
var minorUnits = map[string]int{
	// No decimals.
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0,
	"KRW": 0, "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0,
	"XAF": 0, "XOF": 0, "XPF": 0,
	// Three decimals.
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	// Four decimals.
	"CLF": 4, "UYW": 4,
	// No minor unit (N.A.).
	"XAG": -1, "XAU": -1, "XBA": -1, "XBB": -1, "XBC": -1, "XBD": -1,
	"XDR": -1, "XPD": -1, "XPT": -1, "XSU": -1, "XTS": -1, "XUA": -1,
	"XXX": -1,
}
