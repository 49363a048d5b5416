package scanner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"os"
)

// RAW image file, our stand-in for the scanner's native format. All
// numbers are little-endian:
//
//	offset size  field
//	0      8     magic "IDKRAW01"
//	8      4     width: columns, along the vehicle
//	12     4     height: detector rows
//	16     2     bits per sample (16)
//	18     2     samples per pixel (1)
//	20     8     length of the pixel data in bytes (width*height*2)
//	28     4     reserved, zero
//	32     ...   pixel data, row after row; pseudo-random here
const (
	rawMagic      = "IDKRAW01"
	rawHeaderSize = 32
	rawRows       = 1024 // a typical detector line is of this order
	minRawSize    = rawHeaderSize + 2
	chunkSize     = 1 << 20 // RAW data is generated and written this much at a time
)

type rawPlan struct {
	size int64 // requested file size; the written one is rounded down to whole rows
	seed [32]byte
}

// rawGeometry fits an image of 16-bit pixels into size bytes.
func rawGeometry(size int64) (width, height uint32, data int64) {
	pixels := (size - rawHeaderSize) / 2
	h := min(int64(rawRows), pixels)
	w := pixels / h
	return uint32(w), uint32(h), w * h * 2
}

// writeRaw streams a RAW image to a new file and returns the hex SHA-256
// of what it wrote. Memory use is one chunk whatever the image size.
func writeRaw(ctx context.Context, path string, p rawPlan) (string, error) {
	width, height, data := rawGeometry(p.size)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	w := io.MultiWriter(f, h)

	var hdr [rawHeaderSize]byte
	copy(hdr[:], rawMagic)
	binary.LittleEndian.PutUint32(hdr[8:], width)
	binary.LittleEndian.PutUint32(hdr[12:], height)
	binary.LittleEndian.PutUint16(hdr[16:], 16)
	binary.LittleEndian.PutUint16(hdr[18:], 1)
	binary.LittleEndian.PutUint64(hdr[20:], uint64(data))
	if _, err := w.Write(hdr[:]); err != nil {
		f.Close()
		return "", err
	}
	src := rand.NewChaCha8(p.seed)
	buf := make([]byte, min(chunkSize, data))
	for left := data; left > 0; {
		if err := ctx.Err(); err != nil {
			f.Close()
			return "", fmt.Errorf("writing %s: %w", path, err)
		}
		chunk := buf[:min(int64(len(buf)), left)]
		src.Read(chunk) // never fails
		if _, err := w.Write(chunk); err != nil {
			f.Close()
			return "", err
		}
		left -= int64(len(chunk))
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

type docPlan struct {
	name string
	pdf  bool
	seed uint64
}

// writeDoc writes a scanned document to a new file.
func writeDoc(path string, d docPlan) (string, error) {
	var data []byte
	if d.pdf {
		data = fakePDF(d.seed)
	} else {
		var err error
		if data, err = fakeJPEG(d.seed); err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// fakeJPEG is a real, small grey JPEG: a page with lines of "text", so
// that anything that decodes documents can.
func fakeJPEG(seed uint64) ([]byte, error) {
	r := rand.New(rand.NewPCG(seed, 0))
	img := image.NewGray(image.Rect(0, 0, 210, 297)) // A4 proportions
	for i := range img.Pix {
		img.Pix[i] = 0xF0
	}
	for y := 20; y < 280; y += 8 {
		x := 15
		for x < 195 {
			word := 5 + r.IntN(25)
			for dx := 0; dx < word && x+dx < 195; dx++ {
				for dy := 0; dy < 3; dy++ {
					img.SetGray(x+dx, y+dy, color.Gray{Y: uint8(r.IntN(80))})
				}
			}
			x += word + 4
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 75}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// fakePDF is a minimal valid one-page PDF with a few drawn lines.
func fakePDF(seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	var content bytes.Buffer
	for y := 780; y > 100; y -= 14 {
		fmt.Fprintf(&content, "50 %d m %d %d l S\n", y, 100+r.IntN(450), y)
	}
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%sendstream", content.Len(), content.String()),
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}

// writeInPlace truncates path and writes data into the same file, the way
// a Windows program saves, rather than the atomic write-and-rename the
// agent would prefer: the agent has to cope with what it sees meanwhile.
func writeInPlace(path string, data []byte) (string, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}
