// An AudioWorklet processor: the microphone's samples, as recorded, passed to the page about
// ten times a second (voice.js sends them to the server while the person speaks).

const BLOCK = 1600; // samples: 0.1 s at the 16 kHz the page records at

class PcmCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(BLOCK);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0]?.[0];
    for (let i = 0; channel && i < channel.length; i++) {
      this.block[this.filled++] = channel[i];
      if (this.filled === BLOCK) {
        this.port.postMessage(this.block.slice(0));
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
