package mfa

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"

	"github.com/boombuler/barcode/qr"
)

// QR code image bounds for QRPNG.
const (
	QRMinSize = 64
	QRMaxSize = 2048
	qrQuiet   = 4 // modules of white border the QR standard asks for
	// qrModulePx is the least number of pixels per module QRImageSize
	// gives: below it a phone camera reads a dense code poorly.
	qrModulePx = 4
)

// QRImageSize is the image size to render uri at: size, or more when the
// URI needs so many modules that size would give them fewer than four
// pixels each (a long email address in the label), at most QRMaxSize.
func QRImageSize(uri string, size int) (int, error) {
	code, err := qr.Encode(uri, qr.M, qr.Auto)
	if err != nil {
		return 0, fmt.Errorf("qr: %w", err)
	}
	need := (code.Bounds().Dx() + 2*qrQuiet) * qrModulePx
	return min(max(size, need), QRMaxSize), nil
}

// QRPNG renders uri (an otpauth URI) as a size x size PNG QR code, black on
// white, with error correction level M and the 4-module quiet zone scanners
// need. Modules are whole pixels, so the code stays sharp; the rest of the
// image is white margin.
func QRPNG(uri string, size int) ([]byte, error) {
	if size < QRMinSize || size > QRMaxSize {
		return nil, fmt.Errorf("qr: size %d is not within %d..%d", size, QRMinSize, QRMaxSize)
	}
	code, err := qr.Encode(uri, qr.M, qr.Auto)
	if err != nil {
		return nil, fmt.Errorf("qr: %w", err)
	}
	n := code.Bounds().Dx() // one pixel per module
	scale := size / (n + 2*qrQuiet)
	if scale < 1 {
		return nil, errors.New("qr: the image is too small for this URI")
	}
	offset := (size - n*scale) / 2
	img := image.NewPaletted(image.Rect(0, 0, size, size), color.Palette{color.White, color.Black})
	origin := code.Bounds().Min
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			if r, _, _, _ := code.At(origin.X+x, origin.Y+y).RGBA(); r != 0 {
				continue // white module
			}
			for py := 0; py < scale; py++ {
				row := img.Pix[(offset+y*scale+py)*img.Stride:]
				for px := 0; px < scale; px++ {
					row[offset+x*scale+px] = 1
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("qr: %w", err)
	}
	return buf.Bytes(), nil
}
