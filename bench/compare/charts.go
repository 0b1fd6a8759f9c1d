package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// systemColors: Tandem blue, etcd orange, anything else grey.
func systemColor(key string) color.Color {
	switch {
	case key == "etcd":
		return color.RGBA{R: 0xe6, G: 0x7e, B: 0x22, A: 0xff}
	case len(key) >= 6 && key[:6] == "tandem":
		return color.RGBA{R: 0x1f, G: 0x5f, B: 0xbf, A: 0xff}
	}
	return color.Gray{Y: 0x80}
}

// writeCharts draws throughput.png and latency.png, one panel per
// workload, and returns their file names.
func writeCharts(dir string, r *Results) ([]string, error) {
	if len(r.Systems) == 0 {
		return nil, nil
	}
	tp, err := panels(r, "ops/s", false, func(s *Step) []float64 { return []float64{s.OpsPerSec} }, nil)
	if err != nil {
		return nil, err
	}
	if err := savePanels(filepath.Join(dir, "throughput.png"), tp); err != nil {
		return nil, err
	}
	lat, err := panels(r, "latency (ms, log)", true, func(s *Step) []float64 { return []float64{s.P50, s.P99, s.P999} }, []string{"p50", "p99", "p99.9"})
	if err != nil {
		return nil, err
	}
	if err := savePanels(filepath.Join(dir, "latency.png"), lat); err != nil {
		return nil, err
	}
	return []string{"throughput.png", "latency.png"}, nil
}

// panels makes one plot per workload with a line per system and series.
func panels(r *Results, ylabel string, logY bool, values func(*Step) []float64, series []string) ([]*plot.Plot, error) {
	dashes := [][]vg.Length{nil, {vg.Points(4), vg.Points(2)}, {vg.Points(1), vg.Points(2)}}
	var out []*plot.Plot
	minC, maxC := math.Inf(1), 0.0
	for _, c := range r.Settings.Clients {
		minC, maxC = math.Min(minC, float64(c)), math.Max(maxC, float64(c))
	}
	for _, w := range r.Workloads {
		p := plot.New()
		p.Title.Text = shortName(w)
		p.X.Label.Text = "clients (C)"
		p.Y.Label.Text = ylabel
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = clientTicks(r.Settings.Clients)
		p.X.Min, p.X.Max = minC/1.5, maxC*1.5
		if logY {
			p.Y.Scale = plot.LogScale{}
			p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		} else {
			p.Y.Min = 0
		}
		p.Legend.Top = true
		p.Legend.Left = true
		p.Add(plotter.NewGrid())
		for _, s := range r.Systems {
			n := max(1, len(series))
			for k := range n {
				var pts plotter.XYs
				for _, c := range r.Settings.Clients {
					st := s.step(w, c)
					if st == nil {
						continue
					}
					v := values(st)[k]
					if logY && v <= 0 {
						continue
					}
					pts = append(pts, plotter.XY{X: float64(c), Y: v})
				}
				if len(pts) == 0 {
					continue
				}
				l, sc, err := plotter.NewLinePoints(pts)
				if err != nil {
					return nil, err
				}
				l.Color, sc.Color = systemColor(s.Key), systemColor(s.Key)
				l.Dashes = dashes[k%len(dashes)]
				sc.Shape = draw.CircleGlyph{}
				p.Add(l, sc)
				name := s.Key
				if series != nil {
					name += " " + series[k]
				}
				p.Legend.Add(name, l, sc)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// clientTicks labels the x axis at the concurrencies measured.
func clientTicks(cs []int) plot.ConstantTicks {
	var t []plot.Tick
	for _, c := range cs {
		t = append(t, plot.Tick{Value: float64(c), Label: fmt.Sprint(c)})
	}
	return t
}

// savePanels lays the plots out in rows of three and writes a PNG.
func savePanels(path string, ps []*plot.Plot) error {
	const cols = 3
	rows := (len(ps) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
		for j := range cols {
			if k := i*cols + j; k < len(ps) {
				grid[i][j] = ps[k]
			}
		}
	}
	img := vgimg.New(vg.Length(cols)*5*vg.Inch, vg.Length(rows)*4*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(grid, tiles, dc)
	for i := range grid {
		for j := range grid[i] {
			if grid[i][j] != nil {
				grid[i][j].Draw(canvases[i][j])
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
