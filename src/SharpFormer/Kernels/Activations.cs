namespace SharpFormer.Kernels;

/// <summary>The activation functions HuggingFace's <c>ACT2FN</c> names, by the names configs use.</summary>
public enum Activation { GeluErf, GeluTanh, GeluFast, QuickGelu, Relu, Silu, Tanh, Sigmoid, Identity, Mish }

public static class Activations
{
    public static Activation Parse(string name) => name switch
    {
        "gelu" or "gelu_python" => Activation.GeluErf,
        "gelu_new" or "gelu_pytorch_tanh" or "gelu_accurate" => Activation.GeluTanh,
        "gelu_fast" => Activation.GeluFast,
        "quick_gelu" => Activation.QuickGelu,
        "relu" => Activation.Relu,
        "silu" or "swish" => Activation.Silu,
        "tanh" => Activation.Tanh,
        "sigmoid" => Activation.Sigmoid,
        "linear" => Activation.Identity,
        "mish" => Activation.Mish,
        _ => throw new SharpFormerException($"config.json: unknown activation function \"{name}\""),
    };

    const double Sqrt2OverPi = 0.7978845608028654;

    /// <summary>Applies the activation in place.</summary>
    public static void Apply(Activation act, Span<float> x)
    {
        switch (act)
        {
            case Activation.GeluErf:
                for (int i = 0; i < x.Length; i++) { double v = x[i]; x[i] = (float)(0.5 * v * (1.0 + MathF2.Erf(v * 0.7071067811865476))); }
                break;
            case Activation.GeluTanh:
                for (int i = 0; i < x.Length; i++) { double v = x[i]; x[i] = (float)(0.5 * v * (1.0 + Math.Tanh(Sqrt2OverPi * (v + 0.044715 * v * v * v)))); }
                break;
            case Activation.GeluFast:
                for (int i = 0; i < x.Length; i++) { double v = x[i]; x[i] = (float)(0.5 * v * (1.0 + Math.Tanh(v * Sqrt2OverPi * (1.0 + 0.044715 * v * v)))); }
                break;
            case Activation.QuickGelu:
                for (int i = 0; i < x.Length; i++) { double v = x[i]; x[i] = (float)(v / (1.0 + Math.Exp(-1.702 * v))); }
                break;
            case Activation.Relu:
                for (int i = 0; i < x.Length; i++) x[i] = MathF.Max(x[i], 0f);
                break;
            case Activation.Silu:
                for (int i = 0; i < x.Length; i++) { double v = x[i]; x[i] = (float)(v / (1.0 + Math.Exp(-v))); }
                break;
            case Activation.Tanh:
                for (int i = 0; i < x.Length; i++) x[i] = MathF.Tanh(x[i]);
                break;
            case Activation.Sigmoid:
                for (int i = 0; i < x.Length; i++) x[i] = (float)(1.0 / (1.0 + Math.Exp(-(double)x[i])));
                break;
            case Activation.Mish:
                for (int i = 0; i < x.Length; i++) { double v = x[i]; x[i] = (float)(v * Math.Tanh(Math.Log(1.0 + Math.Exp(v)))); }
                break;
            case Activation.Identity:
                break;
        }
    }
}

/// <summary>Math .NET lacks.</summary>
public static class MathF2
{
    /// <summary>erf(x) to ~1e-15 relative (W. J. Cody's rational approximations via erfc), enough for float32 GELU.</summary>
    public static double Erf(double x)
    {
        double ax = Math.Abs(x);
        if (ax < 0.5)
        {
            // Maclaurin-like rational approximation (Cody) for small |x|.
            double t = x * x;
            double top = (((0.185777706184603153 * t + 3.16112374387056560) * t + 113.864154151050156) * t + 377.485237685302021) * t + 3209.37758913846947;
            double bot = (((t + 23.6012909523441209) * t + 244.024637934444173) * t + 1282.61652607737228) * t + 2844.23683343917062;
            return x * top / bot;
        }
        double r = ax < 4.0 ? ErfcMid(ax) : ErfcLarge(ax);
        return x > 0 ? 1.0 - r : r - 1.0;
    }

    static double ErfcMid(double x)
    {
        double top = (((((((5.64188496988670089e-1 * x + 8.88314979438837594) * x + 66.1191906371416295) * x + 298.635138197400131) * x + 881.952221241769090) * x + 1712.04761263407058) * x + 2051.07837782607147) * x + 1230.33935479799725) * x + 2.15311535474403846e-8;
        double bot = (((((((x + 15.7449261107098347) * x + 117.693950891312499) * x + 537.181101862009858) * x + 1621.38957456669019) * x + 3290.79923573345963) * x + 4362.61909014324716) * x + 3439.36767414372164) * x + 1230.33935480374942;
        return Math.Exp(-x * x) * top / bot;
    }

    static double ErfcLarge(double x)
    {
        double z = 1.0 / (x * x);
        double top = ((((1.63153871373020978e-2 * z + 3.05326634961232344e-1) * z + 3.60344899949804439e-1) * z + 1.25781726111229246e-1) * z + 1.60837851487422766e-2) * z + 6.58749161529837803e-4;
        double bot = ((((z + 2.56852019228982242) * z + 1.87295284992346725) * z + 5.27905102951428412e-1) * z + 6.05183413124413191e-2) * z + 2.33520497626869185e-3;
        double r = 0.5641895835477563 - z * top / bot; // 1/sqrt(pi) - ...
        return Math.Exp(-x * x) * r / x;
    }
}
