package mfa

import (
	"bytes"
	"encoding/base32"
	"image"
	"image/color"
	_ "image/png" // image.Decode reads PNG
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/boombuler/barcode/qr"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/stretchr/testify/require"
)

// TestQRPNG decodes the PNG and reads the QR modules back: the image has
// the asked size, a white quiet zone, the three finder patterns, and the
// same modules as the QR encoding of the URI.
func TestQRPNG(t *testing.T) {
	t.Parallel()
	key, err := NewTOTP("StreamSpace", "alice@example.com")
	require.NoError(t, err)
	uri := TOTPURI(key)

	for _, size := range []int{256, 300} {
		b, err := QRPNG(uri, size)
		require.NoError(t, err)
		img, format, err := image.Decode(bytes.NewReader(b))
		require.NoError(t, err)
		require.Equal(t, "png", format)
		require.Equal(t, image.Rect(0, 0, size, size), img.Bounds())

		ref, err := qr.Encode(uri, qr.M, qr.Auto)
		require.NoError(t, err)
		n := ref.Bounds().Dx()
		scale := size / (n + 8)
		off := (size - n*scale) / 2
		require.GreaterOrEqual(t, off, 4*scale, "quiet zone of 4 modules")
		dark := func(c color.Color) bool { r, _, _, _ := c.RGBA(); return r < 0x8000 }
		module := func(x, y int) bool { // centre pixel of module (x, y)
			return dark(img.At(off+x*scale+scale/2, off+y*scale+scale/2))
		}
		for y := 0; y < size; y++ { // nothing dark outside the code
			for x := 0; x < size; x++ {
				if x < off || y < off || x >= off+n*scale || y >= off+n*scale {
					require.False(t, dark(img.At(x, y)), "pixel (%d,%d) in the quiet zone", x, y)
				}
			}
		}
		finder := func(x0, y0 int) {
			for y := 0; y < 7; y++ {
				for x := 0; x < 7; x++ {
					ring := max(abs(x-3), abs(y-3))
					require.Equal(t, ring != 2, module(x0+x, y0+y), "finder at (%d,%d) module (%d,%d)", x0, y0, x, y)
				}
			}
		}
		finder(0, 0)
		finder(n-7, 0)
		finder(0, n-7)
		for y := 0; y < n; y++ {
			for x := 0; x < n; x++ {
				r, _, _, _ := ref.At(x, y).RGBA()
				require.Equal(t, r == 0, module(x, y), "module (%d,%d)", x, y)
			}
		}
	}

	_, err = QRPNG(uri, 10)
	require.Error(t, err)
	_, err = QRPNG(uri, 100_000)
	require.Error(t, err)
	_, err = QRPNG(strings.Repeat("x", 1000), QRMinSize) // too many modules for 64 px
	require.Error(t, err)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// TestQRPNGDecodesOverAllLengths renders the otpauth URIs the API can
// produce, from the shortest names to the longest (a 64-byte issuer and a
// 254-byte email address, ASCII and UTF-8, which percent-encoding triples),
// at the size the API serves, and decodes each with a QR reader. The
// secrets come from a fixed seed, so a failure is an encoder regression
// and fails every run. PURE_BARCODE tells the reader the image is a
// generated, unrotated code: it reads the modules at their known places
// rather than hunting for the code as a camera must.
func TestQRPNGDecodesOverAllLengths(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(6238, 4226))
	secret := func() string {
		raw := make([]byte, TOTPSecretSize)
		for i := range raw {
			raw[i] = byte(rng.Uint32())
		}
		return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw)
	}
	name := func(unit string, n int) string { // about n bytes of unit, whole runes
		return strings.Repeat(unit, max(1, n/len(unit)))
	}
	email := func(unit string, n int) string {
		const domain = "@example.com"
		return name(unit, n-len(domain)) + domain
	}
	issuers := []string{"S", "StreamSpace", name("i", MaxIssuerLen), name("é", MaxIssuerLen)}
	var accounts []string
	for n := 1; n <= 64; n += 9 {
		accounts = append(accounts, name("u", n)) // usernames
	}
	for n := 13; n <= MaxAccountLen; n += 20 {
		accounts = append(accounts, email("a", n), email("ü", n))
	}
	accounts = append(accounts, email("a", MaxAccountLen), email("ü", MaxAccountLen), email("a.b+c", MaxAccountLen))
	longest := 0
	for _, issuer := range issuers {
		require.NoError(t, ValidIssuer(issuer), issuer)
		for _, account := range accounts {
			require.LessOrEqual(t, len(account), MaxAccountLen)
			uri, err := TOTPURIFor(issuer, account, secret())
			require.NoError(t, err)
			longest = max(longest, len(uri))
			size, err := QRImageSize(uri, 256)
			require.NoError(t, err)
			png, err := QRPNG(uri, size)
			require.NoError(t, err, "%d-byte URI", len(uri))
			require.Equal(t, uri, decodePureQR(t, png), "%d-byte URI at %d px", len(uri), size)
		}
	}
	require.Greater(t, longest, 1000, "the longest names were tried")
}

// TestQRImageSize keeps modules of at least four pixels.
func TestQRImageSize(t *testing.T) {
	t.Parallel()
	size, err := QRImageSize("otpauth://totp/S:a?secret=AAAA", 256)
	require.NoError(t, err)
	require.Equal(t, 256, size, "a short URI fits the asked size")
	long := "otpauth://totp/S:" + strings.Repeat("%C3%BC", 250)
	size, err = QRImageSize(long, 256)
	require.NoError(t, err)
	code, err := qr.Encode(long, qr.M, qr.Auto)
	require.NoError(t, err)
	require.GreaterOrEqual(t, size/(code.Bounds().Dx()+8), 4)
	_, err = QRImageSize(strings.Repeat("x", 5000), 256)
	require.Error(t, err, "more than a QR code holds")
}

func TestValidIssuer(t *testing.T) {
	t.Parallel()
	require.NoError(t, ValidIssuer("Acme Streams"))
	require.Error(t, ValidIssuer(""))
	require.Error(t, ValidIssuer("Acme:Prod"))
	require.Error(t, ValidIssuer(strings.Repeat("x", MaxIssuerLen+1)))
}

// decodePureQR reads the text of a generated QR code PNG.
func decodePureQR(t *testing.T, data []byte) string {
	t.Helper()
	img, _, err := image.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	require.NoError(t, err)
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	require.NoError(t, err)
	return res.GetText()
}
